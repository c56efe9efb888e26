package ckptwrite

import (
	"archive/zip"
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainwrap/trainwrap/internal/ckptformat"
	"github.com/trainwrap/trainwrap/internal/testkit"
)

// The minimal file from the safetensors format description, byte for byte.
func TestWriteSafetensorsExactBytes(t *testing.T) {
	want, _ := hex.DecodeString("5800000000000000")
	want = append(want, []byte(`{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   `)...)
	want = append(want, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40)
	var b bytes.Buffer
	err := WriteSafetensors(&b, []Tensor{{Name: "w", DType: "F32", Shape: []int64{2}, Data: []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}}}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("got\n%q\nwant\n%q", b.Bytes(), want)
	}
	if len(want) != 104 {
		t.Fatalf("reference file is %d bytes, want 104", len(want))
	}
}

func TestWriteSafetensorsRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tensors []Tensor
		errPart string
	}{
		{"short data", []Tensor{{Name: "a", DType: "F32", Shape: []int64{2}, Data: make([]byte, 4)}}, "needs 8"},
		{"unknown dtype", []Tensor{{Name: "a", DType: "F128", Shape: []int64{1}, Data: make([]byte, 16)}}, "unknown dtype"},
		{"duplicate", []Tensor{{Name: "a", DType: "U8", Shape: []int64{1}, Data: []byte{1}}, {Name: "a", DType: "U8", Shape: []int64{1}, Data: []byte{1}}}, "twice"},
		{"reserved", []Tensor{{Name: "__metadata__", DType: "U8", Shape: []int64{1}, Data: []byte{1}}}, "reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteSafetensors(io.Discard, tc.tensors, nil)
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("err = %v, want one containing %q", err, tc.errPart)
			}
		})
	}
}

func TestWriteTorchSaveIsAlignedZip64(t *testing.T) {
	var b bytes.Buffer
	obj := map[string]any{"global_step": int64(300), "epoch": 1.5, "ok": true, "none": nil, "list": []any{"a", int64(-70000), int64(1) << 40}}
	if err := WriteTorchSave(&b, "archive", obj); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("archive/zip rejects the archive: %v", err)
	}
	names := map[string]bool{}
	for _, f := range zr.File {
		names[f.Name] = true
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if off%64 != 0 {
			t.Errorf("%s data at offset %d, not 64-byte aligned", f.Name, off)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Errorf("%s: %v (CRC?)", f.Name, err)
		}
		rc.Close()
	}
	for _, n := range []string{"archive/data.pkl", "archive/version", "archive/byteorder"} {
		if !names[n] {
			t.Errorf("record %s missing; have %v", n, names)
		}
	}
	if got := data[len(data)-ckptformat.EndLen-ckptformat.Locator64Len-ckptformat.End64Len:][:4]; !bytes.Equal(got, []byte("PK\x06\x06")) {
		t.Errorf("no ZIP64 end record before the locator and end record: %q", got)
	}
	if err := WriteTorchSave(io.Discard, "a/b", obj); err == nil {
		t.Error("archive name with a slash accepted")
	}
	if err := WriteTorchSave(io.Discard, "x", map[int]int{1: 1}); err == nil {
		t.Error("map with int keys accepted")
	}
}

// The pickle must mean the same object to Python; python3 is used when present.
func TestWriteTorchSavePythonReadsIt(t *testing.T) {
	py := testkit.PythonWithTorch()
	if py == "" {
		py = testkit.NeedTool(t, "python3", "python3")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "state.pt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{"step": int64(300), "lr": 0.5, "neg": int64(-5), "big": int64(1) << 40, "huge": int64(-1) << 62, "flags": []any{true, false, nil}, "name": "héllo", "n": map[string]any{}}
	if err := WriteTorchSave(f, "state", obj); err != nil {
		t.Fatal(err)
	}
	f.Close()
	script := `
import sys, zipfile, pickle, json
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
assert z.read("state/version") == b"3\n"
o = pickle.loads(z.read("state/data.pkl"))
print(json.dumps(o, sort_keys=True, ensure_ascii=False))
try:
    import torch
except ImportError:
    sys.exit(0)
t = torch.load(sys.argv[1], weights_only=False)
assert t == o, (t, o)
if int(torch.__version__.split(".")[0]) >= 2:  # 1.x's weights_only unpickler lacks BINFLOAT
    assert torch.load(sys.argv[1], weights_only=True) == o
print("torch ok")
`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := `{"big": 1099511627776, "flags": [true, false, null], "huge": -4611686018427387904, "lr": 0.5, "n": {}, "name": "héllo", "neg": -5, "step": 300}`
	if first, _, _ := strings.Cut(string(out), "\n"); first != want {
		t.Fatalf("python read\n%s\nwant\n%s", first, want)
	}
	t.Logf("%s", out)
}
