package checkpoints

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"
)

var megatronName = regexp.MustCompile(`^iter_(\d{7,})$`)

// MegatronTracker is the file Megatron-LM writes next to its iter_ directories,
// holding the iteration to load (or "release").
const MegatronTracker = "latest_checkpointed_iteration.txt"

// megatronLayout is Megatron-LM's iter_<7 digits>/ with its tracker file.
type megatronLayout struct{}

func (megatronLayout) name() string { return LayoutMegatron }

func (megatronLayout) match(dir string, e fs.DirEntry) (int64, bool) {
	if !e.IsDir() {
		return 0, false
	}
	return stepIn(megatronName, e.Name())
}

// check requires files, and for the torch_dist format (any .distcp file) the
// .metadata that the coordinator writes once every rank has finished.
func (megatronLayout) check(c *candidate) string {
	if len(c.files) == 0 {
		return "no files"
	}
	for _, f := range c.files {
		if strings.HasSuffix(f.rel, ".distcp") {
			return dcpCheck(c.files)
		}
	}
	return ""
}

// megatronDirName is the directory of an iteration, as Megatron names it.
func megatronDirName(iter int64) string { return fmt.Sprintf("iter_%07d", iter) }
