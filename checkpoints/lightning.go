package checkpoints

import (
	"io/fs"
	"regexp"
	"strings"
)

var (
	lightningStep = regexp.MustCompile(`(?:^|[-_])step=(\d+)`)
	lightningLast = regexp.MustCompile(`^last(?:-v\d+)?\.ckpt$`)
	hpcCkpt       = regexp.MustCompile(`^hpc_ckpt_(\d+)\.ckpt$`)
)

// lightningLayout is a Lightning ModelCheckpoint file: epoch=E-step=S.ckpt, last.ckpt
// (a copy, or a symlink handled as a pointer), or SLURM's hpc_ckpt_<n>.ckpt.
type lightningLayout struct{}

func (lightningLayout) name() string { return LayoutLightning }

func (lightningLayout) match(dir string, e fs.DirEntry) (int64, bool) {
	n := e.Name()
	if !e.Type().IsRegular() || !strings.HasSuffix(n, ".ckpt") {
		return 0, false
	}
	if lightningLast.MatchString(n) {
		return -1, true // a copy of some step; its step is inside the pickle
	}
	if s, ok := stepIn(lightningStep, n); ok {
		return s, true
	}
	if s, ok := stepIn(hpcCkpt, n); ok {
		return s, true
	}
	if s, ok := stepIn(anyStep, strings.TrimSuffix(n, ".ckpt")); ok {
		return s, true
	}
	return -1, true
}

// check has nothing beyond verifyFile's zip check: a .ckpt is one torch.save archive.
func (lightningLayout) check(c *candidate) string { return "" }
