package checkpoints

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/trainwrap/trainwrap/internal/ckptwrite"
)

// Fixtures are built at test time with the package's own writers, byte-exact to the
// formats, so the tests need no PyTorch.

// noQuiet judges files however new they are: fixtures were all just written.
var noQuiet = ScanOptions{QuietPeriod: -1, IgnoreOpenFiles: true}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func safetensorsBytes(t testing.TB, elems int) []byte {
	t.Helper()
	data := make([]byte, 4*elems)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	var b bytes.Buffer
	if err := ckptwrite.WriteSafetensors(&b, []ckptwrite.Tensor{
		{Name: "w", DType: "F32", Shape: []int64{int64(elems)}, Data: data},
		{Name: "b", DType: "BF16", Shape: []int64{2}, Data: []byte{1, 2, 3, 4}},
	}, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func torchBytes(t testing.TB, name string, obj any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := ckptwrite.WriteTorchSave(&b, name, obj); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jsonBytes(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hfOpts varies an HF checkpoint.
type hfOpts struct {
	sharded   bool
	peft      bool
	deepspeed int // data-parallel world size of a DeepSpeed tag inside; 0 = none
	fsdp      bool
	rngRanks  int // 0 = a single rng_state.pth
	best      string
}

// writeHF writes a complete HF Trainer checkpoint-<step> under root.
func writeHF(t testing.TB, root string, step int64, o hfOpts) string {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprintf("checkpoint-%d", step))
	writeFile(t, filepath.Join(dir, "config.json"), []byte(`{"model_type":"llama","hidden_size":8}`))
	switch {
	case o.peft:
		writeFile(t, filepath.Join(dir, "adapter_model.safetensors"), safetensorsBytes(t, 4))
		writeFile(t, filepath.Join(dir, "adapter_config.json"), []byte(`{"r":8,"peft_type":"LORA"}`))
	case o.sharded:
		writeFile(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), safetensorsBytes(t, 4))
		writeFile(t, filepath.Join(dir, "model-00002-of-00002.safetensors"), safetensorsBytes(t, 2))
		writeFile(t, filepath.Join(dir, "model.safetensors.index.json"), jsonBytes(t, map[string]any{
			"metadata":   map[string]any{"total_size": 40},
			"weight_map": map[string]string{"a.w": "model-00001-of-00002.safetensors", "b.w": "model-00002-of-00002.safetensors"},
		}))
	case o.deepspeed > 0:
		tag := fmt.Sprintf("global_step%d", step)
		writeDeepSpeedTag(t, filepath.Join(dir, tag), o.deepspeed)
		writeFile(t, filepath.Join(dir, "latest"), []byte(tag))
		writeFile(t, filepath.Join(dir, "zero_to_fp32.py"), []byte("# script\n"))
	case o.fsdp:
		writeDCP(t, filepath.Join(dir, "pytorch_model_fsdp_0"), 2)
		writeDCP(t, filepath.Join(dir, "optimizer_0"), 2)
	default:
		writeFile(t, filepath.Join(dir, "model.safetensors"), safetensorsBytes(t, 16))
	}
	if o.deepspeed == 0 && !o.fsdp {
		writeFile(t, filepath.Join(dir, "optimizer.pt"), torchBytes(t, "optimizer", map[string]any{"state": map[string]any{}, "param_groups": []any{map[string]any{"lr": 0.001}}}))
	}
	writeFile(t, filepath.Join(dir, "scheduler.pt"), torchBytes(t, "scheduler", map[string]any{"last_epoch": step}))
	writeFile(t, filepath.Join(dir, "training_args.bin"), torchBytes(t, "training_args", map[string]any{"output_dir": root}))
	if o.rngRanks == 0 {
		writeFile(t, filepath.Join(dir, "rng_state.pth"), torchBytes(t, "rng_state", map[string]any{"python": int64(1)}))
	}
	for i := 0; i < o.rngRanks; i++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("rng_state_%d.pth", i)), torchBytes(t, fmt.Sprintf("rng_state_%d", i), map[string]any{"rank": int64(i)}))
	}
	st := map[string]any{"global_step": step, "epoch": 1.0, "log_history": []any{}}
	if o.best != "" {
		st["best_model_checkpoint"] = filepath.Join(root, o.best)
	}
	writeFile(t, filepath.Join(dir, "trainer_state.json"), jsonBytes(t, st))
	return dir
}

func writeDeepSpeedTag(t testing.TB, dir string, world int) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "mp_rank_00_model_states.pt"), torchBytes(t, "mp_rank_00_model_states", map[string]any{"module": nil}))
	for r := 0; r < world; r++ {
		n := fmt.Sprintf("bf16_zero_pp_rank_%d_mp_rank_00_optim_states", r)
		writeFile(t, filepath.Join(dir, n+".pt"), torchBytes(t, n, map[string]any{"optimizer_state_dict": map[string]any{"rank": int64(r)}}))
	}
}

func writeDCP(t testing.TB, dir string, ranks int) {
	t.Helper()
	for r := 0; r < ranks; r++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("__%d_0.distcp", r)), bytes.Repeat([]byte{byte(r + 1)}, 64))
	}
	writeFile(t, filepath.Join(dir, ".metadata"), []byte("\x80\x04metadata pickle"))
}

// rawSafetensors writes a header exactly as given followed by dataLen bytes, for
// corruptions the writer refuses to produce.
func rawSafetensors(header string, dataLen int) []byte {
	var b bytes.Buffer
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	b.Write(n[:])
	b.WriteString(header)
	b.Write(bytes.Repeat([]byte{7}, dataLen))
	return b.Bytes()
}

// scanOne scans root and returns the checkpoint named name.
func scanOne(t *testing.T, root, name string, opt ScanOptions) Checkpoint {
	t.Helper()
	list, err := Scan(t.Context(), root, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("checkpoint %s not found in %+v", name, list)
	return Checkpoint{}
}

func fileSize(t testing.TB, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
