// Package cgroup reads which cgroups this process is in, from /proc/self/cgroup
// through prometheus/procfs: the one reader behind the supervisor's job cgroup, the
// OOM-kill counter of post-mortem classification and preflight's memory limit.
package cgroup

import (
	"fmt"
	"path/filepath"

	"github.com/prometheus/procfs"
)

// Membership is where a process sits in each cgroup hierarchy. The paths are relative
// to the hierarchy's mount point and begin with "/".
type Membership struct {
	// Unified is the path in the cgroup v2 hierarchy (the "0::" line); HasUnified says
	// whether the kernel lists one at all: a v1-only host has none.
	Unified    string
	HasUnified bool
	// V1 maps each cgroup v1 controller ("memory", "cpu", "name=systemd") to the path
	// in the hierarchy that holds it. Empty on a v2-only host.
	V1 map[string]string
}

// Self reads this process's membership from procRoot/self/cgroup. procRoot "" is
// /proc; tests point it at a recorded tree, whose self is a link to a pid directory as
// in the real one.
func Self(procRoot string) (Membership, error) {
	if procRoot == "" {
		procRoot = procfs.DefaultMountPoint
	}
	path := filepath.Join(procRoot, "self", "cgroup")
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return Membership{}, fmt.Errorf("read %s: %w", path, err)
	}
	p, err := fs.Self()
	if err != nil {
		return Membership{}, fmt.Errorf("read %s: %w", path, err)
	}
	cgs, err := p.Cgroups()
	if err != nil {
		return Membership{}, fmt.Errorf("read %s: %w", path, err)
	}
	m := Membership{V1: map[string]string{}}
	for _, c := range cgs {
		if c.HierarchyID == 0 && len(c.Controllers) == 0 {
			m.Unified, m.HasUnified = c.Path, true
			continue
		}
		for _, ctl := range c.Controllers {
			m.V1[ctl] = c.Path
		}
	}
	return m, nil
}
