package checkpoints

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxJSONFile bounds the JSON files parsed whole; checkpoint JSON (configs, trainer
// state, shard indexes) is far smaller.
const maxJSONFile = 512 << 20

// verifyFile checks one file's structure by its name, reading headers and footers
// only. It returns "" when the file is sound, or why it is not, and whether it opened
// the file.
func verifyFile(path string, size int64) (string, bool) {
	if size == 0 {
		return "empty (0 bytes)", false
	}
	var check func(*os.File, int64) error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		check = verifyJSON
	case ".safetensors":
		check = verifySafetensors
	case ".pt", ".pth", ".ckpt":
		check = verifyTorchFile
	case ".bin":
		check = verifyBin
	default:
		return "", false // no structure we know: non-empty is all we can say
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("cannot open: %v", err), false
	}
	defer f.Close()
	if err := check(f, size); err != nil {
		return err.Error(), true
	}
	return "", true
}

func verifyJSON(f *os.File, size int64) error {
	if size > maxJSONFile {
		return fmt.Errorf("json: %d bytes is too large to be checkpoint metadata", size)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("json: read: %w", err)
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		return fmt.Errorf("json: does not parse: %v", err)
	}
	return nil
}

// readJSONFile decodes a small JSON file into v.
func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// isTempLeftover reports names of files a writer stages and renames, so that a
// leftover from an interrupted write is not judged as a checkpoint file.
func isTempLeftover(name string) bool {
	return strings.Contains(name, ".tmp") || strings.HasSuffix(name, ".partial")
}
