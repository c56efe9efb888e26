package checkpoints

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainwrap/trainwrap/internal/ckptwrite"
)

// Whatever bytes a file holds, verifying it returns a reason or "", never panics.
func FuzzVerifyFile(f *testing.F) {
	var st, pt bytes.Buffer
	_ = ckptwrite.WriteSafetensors(&st, []ckptwrite.Tensor{{Name: "w", DType: "F32", Shape: []int64{2}, Data: make([]byte, 8)}}, map[string]string{"format": "pt"})
	_ = ckptwrite.WriteTorchSave(&pt, "archive", map[string]any{"global_step": int64(3), "best_model_path": "x"})
	f.Add(st.Bytes(), uint8(0))
	f.Add(pt.Bytes(), uint8(1))
	f.Add([]byte(`{"a": 1}`), uint8(2))
	f.Add(rawSafetensors(`{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}`, 1), uint8(0))
	exts := []string{".safetensors", ".pt", ".json", ".ckpt"}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, ext uint8) {
		p := filepath.Join(dir, "f"+exts[int(ext)%len(exts)])
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = verifyFile(p, int64(len(data)))
		_, _ = lightningInfo(p)
		_, _ = pickleValueAfter(data, "global_step")
	})
}

// Whatever bytes a file name holds (a path has no NUL), the .xxh64 manifest and the
// JSON sidecar give it back exactly, and parseSums never panics on any input.
func FuzzManifestNames(f *testing.F) {
	for _, tc := range trickyNames {
		f.Add("c/" + tc.file)
	}
	f.Add("\\")
	f.Add("\r\n")
	f.Fuzz(func(t *testing.T, name string) {
		_, _ = parseSums([]byte(name))
		if name == "" || strings.ContainsRune(name, 0) {
			return
		}
		files := []ManifestFile{{Path: name, XXH64: "26c7827d889f6da3", Size: 1}}
		got, err := parseSums(formatSums(files))
		if err != nil || len(got) != 1 || got[0].Path != name {
			t.Fatalf("manifest of %q read back as %+v, %v", name, got, err)
		}
		js, err := json.Marshal(Manifest{Root: name, Checkpoint: name, Files: files})
		if err != nil {
			t.Fatal(err)
		}
		var m Manifest
		if err := json.Unmarshal(js, &m); err != nil || m.Root != name || m.Checkpoint != name || m.Files[0].Path != name {
			t.Fatalf("sidecar of %q read back as %q %q %+v, %v", name, m.Root, m.Checkpoint, m.Files, err)
		}
	})
}
