package checkpoints

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// anyStep finds a step number in a generic name: digits at the end, alone (Orbax
// names steps so) or after a word that means a step ("step_100", "ckpt-100",
// "epoch=3", "model_step12"). Other numbered names (pytorch_model_fsdp_0, version_0,
// run_3) are not checkpoints of their own: taking HF's final FSDP save for "step 0"
// would let pruning delete it.
var anyStep = regexp.MustCompile(`(?i)^(?:[a-z_]*?(?:step|iter|iteration|ckpt|checkpoint|epoch|save)[-_=]?)?(\d+)$`)

// dcpLayout is a torch.distributed.checkpoint directory: .metadata plus
// __<rank>_<n>.distcp files, in a directory whose name carries the step.
type dcpLayout struct{}

func (dcpLayout) name() string { return LayoutDCP }

func (dcpLayout) match(dir string, e fs.DirEntry) (int64, bool) {
	if !e.IsDir() {
		return 0, false
	}
	step, ok := stepIn(anyStep, e.Name())
	if !ok {
		return 0, false
	}
	p := filepath.Join(dir, e.Name())
	if dirHas(p, ".metadata") || dirHas(p, ".metadata.tmp") {
		return step, true
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return 0, false
	}
	for _, x := range entries {
		if strings.HasSuffix(x.Name(), ".distcp") {
			return step, true
		}
	}
	return 0, false
}

func (dcpLayout) check(c *candidate) string { return dcpCheck(c.files) }

// dcpCheck: the coordinator renames .metadata.tmp to .metadata only after every rank
// has fsynced its files, so .metadata present means complete.
func dcpCheck(files []fileInfo) string {
	has := func(n string) bool {
		for _, f := range files {
			if f.rel == n {
				return true
			}
		}
		return false
	}
	switch {
	case has(".metadata"):
		return ""
	case has(".metadata.tmp"):
		return ".metadata.tmp without .metadata: the save was interrupted"
	}
	return "no .metadata (written last, after every rank finished)"
}
