package checkpoints

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Whatever bytes a file holds, verifying it returns a reason or "", never panics.
func FuzzVerifyFile(f *testing.F) {
	var st, pt bytes.Buffer
	_ = WriteSafetensors(&st, []Tensor{{Name: "w", DType: "F32", Shape: []int64{2}, Data: make([]byte, 8)}}, map[string]string{"format": "pt"})
	_ = WriteTorchSave(&pt, "archive", map[string]any{"global_step": int64(3), "best_model_path": "x"})
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
