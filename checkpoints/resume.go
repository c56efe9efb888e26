package checkpoints

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/trainwrap/trainwrap/rundir"
)

// chooseResume returns the highest-step complete checkpoint, by step and never by
// mtime, or nil when there is none.
func chooseResume(cands []*candidate) *candidate {
	var best *candidate
	for _, c := range cands {
		if c.Status != StatusComplete || c.Step < 0 {
			continue
		}
		if best == nil || c.Step > best.Step || (c.Step == best.Step && c.Name > best.Name) {
			best = c
		}
	}
	return best
}

// pointerFix is a pointer file that names something other than the resume point,
// with the content that names it instead.
type pointerFix struct {
	path    string
	content string
	was     string
}

// pointerFixes lists the DeepSpeed latest and Megatron tracker files beside the resume
// point that name another checkpoint (or nothing), so that a job that finds its own
// checkpoint agrees with trainwrap. Lightning's last.ckpt is the job's to manage.
func (r *scanResult) pointerFixes(resume *candidate) []pointerFix {
	if resume == nil {
		return nil
	}
	var out []pointerFix
	for _, p := range r.pointers {
		if filepath.Dir(p.path) != filepath.Dir(resume.Path) || p.target == resume.Path {
			continue
		}
		was := p.err
		if was == "" {
			was = "names " + r.rel(p.target)
		}
		switch {
		case p.layout == LayoutDeepSpeed && resume.Layout == LayoutDeepSpeed:
			out = append(out, pointerFix{p.path, filepath.Base(resume.Path), was})
		case p.layout == LayoutMegatron && resume.Layout == LayoutMegatron:
			out = append(out, pointerFix{p.path, strconv.FormatInt(resume.Step, 10), was})
		}
	}
	return out
}

// apply rewrites the pointer atomically (temporary file, fsync, rename, fsync of the
// directory), without a newline, as the frameworks write it.
func (f pointerFix) apply() error {
	if err := rundir.WriteFileAtomic(f.path, []byte(f.content), 0o644); err != nil {
		return fmt.Errorf("checkpoints: rewrite pointer: %w", err)
	}
	return nil
}
