package checkpoints

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// checkpointExts are the file extensions a single-file checkpoint may have.
var checkpointExts = map[string]bool{".pt": true, ".pth": true, ".bin": true, ".safetensors": true, ".ckpt": true}

// genericLayout is any directory, or file with a checkpoint extension, whose name
// carries a step number ("step_100", "ckpt-100.pt", "100").
type genericLayout struct{}

func (genericLayout) name() string { return LayoutGeneric }

func (genericLayout) match(dir string, e fs.DirEntry) (int64, bool) {
	n := e.Name()
	if e.Type().IsRegular() {
		ext := filepath.Ext(n)
		if !checkpointExts[strings.ToLower(ext)] {
			return 0, false
		}
		n = strings.TrimSuffix(n, ext)
		return stepIn(anyStep, n)
	}
	if !e.IsDir() || strings.HasPrefix(n, "version_") {
		return 0, false // Lightning's log versions hold checkpoints, they are not one
	}
	step, ok := stepIn(anyStep, n)
	if !ok || !holdsCheckpointFiles(filepath.Join(dir, n)) {
		return 0, false
	}
	return step, true
}

// holdsCheckpointFiles reports whether dir is empty (a save that died at once) or
// directly holds a file with a checkpoint extension, so that a log or data directory
// with a number in its name is not taken for a checkpoint.
func holdsCheckpointFiles(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	if len(entries) == 0 {
		return true
	}
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if checkpointExts[ext] || ext == ".distcp" {
			return true
		}
	}
	return false
}

func (genericLayout) check(c *candidate) string {
	if len(c.files) == 0 {
		return "no files"
	}
	return ""
}
