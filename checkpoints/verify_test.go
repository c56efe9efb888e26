package checkpoints

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Every layout, written complete, is found with its step and judged complete.
func TestScanLayoutsComplete(t *testing.T) {
	for _, tc := range []struct {
		name   string
		build  func(t *testing.T, root string)
		want   string
		layout string
		step   int64
	}{
		{"hf full weights", func(t *testing.T, r string) { writeHF(t, r, 100, hfOpts{}) }, "checkpoint-100", LayoutHF, 100},
		{"hf sharded", func(t *testing.T, r string) { writeHF(t, r, 200, hfOpts{sharded: true}) }, "checkpoint-200", LayoutHF, 200},
		{"hf peft", func(t *testing.T, r string) { writeHF(t, r, 300, hfOpts{peft: true}) }, "checkpoint-300", LayoutHF, 300},
		{"hf deepspeed zero", func(t *testing.T, r string) { writeHF(t, r, 400, hfOpts{deepspeed: 4, rngRanks: 4}) }, "checkpoint-400", LayoutHF, 400},
		{"hf fsdp", func(t *testing.T, r string) { writeHF(t, r, 500, hfOpts{fsdp: true, rngRanks: 2}) }, "checkpoint-500", LayoutHF, 500},
		{"deepspeed", func(t *testing.T, r string) {
			writeDeepSpeedTag(t, filepath.Join(r, "global_step60"), 2)
			writeFile(t, filepath.Join(r, "latest"), []byte("global_step60"))
		}, "global_step60", LayoutDeepSpeed, 60},
		{"lightning", func(t *testing.T, r string) {
			writeFile(t, filepath.Join(r, "lightning_logs/version_0/checkpoints/epoch=0-step=100.ckpt"), torchBytes(t, "archive", map[string]any{"global_step": int64(100)}))
		}, "lightning_logs/version_0/checkpoints/epoch=0-step=100.ckpt", LayoutLightning, 100},
		{"lightning hpc", func(t *testing.T, r string) {
			writeFile(t, filepath.Join(r, "hpc_ckpt_3.ckpt"), torchBytes(t, "archive", map[string]any{"global_step": int64(9)}))
		}, "hpc_ckpt_3.ckpt", LayoutLightning, 3},
		{"dcp", func(t *testing.T, r string) { writeDCP(t, filepath.Join(r, "step_70"), 4) }, "step_70", LayoutDCP, 70},
		{"megatron", func(t *testing.T, r string) {
			writeFile(t, filepath.Join(r, "iter_0001000/mp_rank_00/model_optim_rng.pt"), torchBytes(t, "model_optim_rng", map[string]any{"iteration": int64(1000)}))
			writeFile(t, filepath.Join(r, MegatronTracker), []byte("1000"))
		}, "iter_0001000", LayoutMegatron, 1000},
		{"megatron torch_dist", func(t *testing.T, r string) {
			writeDCP(t, filepath.Join(r, "iter_0000020"), 2)
			writeFile(t, filepath.Join(r, "iter_0000020/metadata.json"), []byte(`{"sharded_backend":"torch_dist"}`))
		}, "iter_0000020", LayoutMegatron, 20},
		{"generic dir", func(t *testing.T, r string) {
			writeFile(t, filepath.Join(r, "ckpt-9/model.safetensors"), safetensorsBytes(t, 2))
		}, "ckpt-9", LayoutGeneric, 9},
		{"generic file", func(t *testing.T, r string) {
			writeFile(t, filepath.Join(r, "model_step12.pt"), torchBytes(t, "model_step12", map[string]any{}))
		}, "model_step12.pt", LayoutGeneric, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.build(t, root)
			list, err := Scan(t.Context(), root, noQuiet)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 {
				t.Fatalf("found %d checkpoints, want 1: %+v", len(list), list)
			}
			c := list[0]
			if c.Name != tc.want || c.Layout != tc.layout || c.Step != tc.step || c.Status != StatusComplete {
				t.Fatalf("got %s layout=%s step=%d %s; want %s layout=%s step=%d complete", c.Name, c.Layout, c.Step, c, tc.want, tc.layout, tc.step)
			}
			if c.Files == 0 || c.Size == 0 || c.ModTime.IsZero() {
				t.Errorf("sizes not filled in: %+v", c)
			}
		})
	}
}

// Each corruption of a complete HF checkpoint is found, and the reason names the file
// and what is wrong with it.
func TestScanCorruptions(t *testing.T) {
	rewrite := func(rel string, f func([]byte) []byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			p := filepath.Join(dir, rel)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, p, f(b))
		}
	}
	put := func(rel string, data []byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, rel), data) }
	}
	remove := func(rel string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, rel)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		opts    hfOpts
		corrupt func(t *testing.T, dir string)
		reason  string
	}{
		{"truncated header", hfOpts{}, rewrite("model.safetensors", func(b []byte) []byte { return b[:5] }), "model.safetensors: safetensors: file is 5 bytes"},
		{"header length past EOF", hfOpts{}, rewrite("model.safetensors", func(b []byte) []byte { b[0], b[1] = 0x10, 0x27; return b }), "model.safetensors: safetensors: header length 10000 runs past end of file"},
		{"header not JSON", hfOpts{}, rewrite("model.safetensors", func(b []byte) []byte { b[8] = 'x'; return b }), "header is not a JSON object"},
		{"header bad JSON", hfOpts{}, put("model.safetensors", rawSafetensors(`{"w":{"dtype":"F32","shape":[2],`, 8)), "safetensors: header JSON"},
		{"unknown dtype", hfOpts{}, put("model.safetensors", rawSafetensors(`{"w":{"dtype":"F128","shape":[2],"data_offsets":[0,32]}}`, 32)), `unknown dtype "F128"`},
		{"size mismatch", hfOpts{}, put("model.safetensors", rawSafetensors(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8)), "needs 12"},
		{"offsets with a hole", hfOpts{}, put("model.safetensors", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}`, 24)), "offsets not contiguous"},
		{"trailing bytes", hfOpts{}, rewrite("model.safetensors", func(b []byte) []byte { return append(b, 0, 0, 0) }), "3 trailing bytes"},
		{"truncated data", hfOpts{}, rewrite("model.safetensors", func(b []byte) []byte { return b[:len(b)-4] }), "truncated"},
		{"bad JSON file", hfOpts{}, put("config.json", []byte(`{"model_type": `)), "config.json: json: does not parse"},
		{"zip without end records", hfOpts{}, rewrite("optimizer.pt", func(b []byte) []byte { return b[:len(b)-endLen-locator64Len-end64Len] }), "optimizer.pt: zip: no end-of-central-directory record"},
		{"zip cut mid-data", hfOpts{}, rewrite("optimizer.pt", func(b []byte) []byte { return b[:100] }), "optimizer.pt: zip:"},
		{"zip central directory moved", hfOpts{}, rewrite("scheduler.pt", func(b []byte) []byte {
			i := bytes.LastIndex(b, []byte("PK\x06\x06"))
			return append(append(append([]byte{}, b[:i]...), 0, 0, 0, 0), b[i:]...)
		}), "scheduler.pt: zip:"},
		{"not a torch file", hfOpts{}, put("scheduler.pt", []byte("hello world")), "neither a zip archive"},
		{"zero-byte file", hfOpts{}, put("scheduler.pt", nil), "scheduler.pt: empty (0 bytes)"},
		{"missing trainer_state.json", hfOpts{}, remove("trainer_state.json"), "trainer_state.json missing"},
		{"step mismatch", hfOpts{}, put("trainer_state.json", []byte(`{"global_step": 250}`)), "global_step 250 does not match the name (step 300)"},
		{"no weights", hfOpts{}, remove("model.safetensors"), "no model weights"},
		{"missing shard", hfOpts{sharded: true}, remove("model-00002-of-00002.safetensors"), "names 1 shard(s) that are missing: model-00002-of-00002.safetensors"},
		{"latest names a missing tag", hfOpts{deepspeed: 2}, put("latest", []byte("global_step999")), `latest names tag "global_step999", which does not exist`},
		{"empty latest", hfOpts{deepspeed: 2}, put("latest", nil), "latest: empty"},
		{"missing optimizer shard", hfOpts{deepspeed: 4}, remove("global_step300/bf16_zero_pp_rank_2_mp_rank_00_optim_states.pt"), "optimizer shard for data-parallel rank 2 (mp_rank_00) is missing"},
		{"zero-byte model states", hfOpts{deepspeed: 2}, put("global_step300/mp_rank_00_model_states.pt", nil), "global_step300/mp_rank_00_model_states.pt: empty"},
		{"fsdp interrupted", hfOpts{fsdp: true}, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "pytorch_model_fsdp_0")
			if err := os.Rename(filepath.Join(p, ".metadata"), filepath.Join(p, ".metadata.tmp")); err != nil {
				t.Fatal(err)
			}
		}, "pytorch_model_fsdp_0: .metadata.tmp without .metadata"},
		{"rng state of one rank missing", hfOpts{rngRanks: 4}, remove("rng_state_1.pth"), "rng_state_1.pth missing"},
		{"incomplete marker", hfOpts{}, put(hfIncompleteMarker, []byte("saving")), "checkpoint-is-incomplete.txt present"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := writeHF(t, root, 300, tc.opts)
			if c := scanOne(t, root, "checkpoint-300", noQuiet); c.Status != StatusComplete {
				t.Fatalf("fixture not complete before corruption: %s", c)
			}
			tc.corrupt(t, dir)
			c := scanOne(t, root, "checkpoint-300", noQuiet)
			if c.Status != StatusIncomplete || !strings.Contains(c.Reason, tc.reason) {
				t.Fatalf("got %q, want incomplete with %q", c, tc.reason)
			}
		})
	}
}

// A preallocated safetensors file (safetensors 0.8.0-rc's set_len before writing)
// has the right size and header but a hole where the data should be.
func TestScanPreallocatedZeroTail(t *testing.T) {
	root := t.TempDir()
	dir := writeHF(t, root, 300, hfOpts{})
	full := safetensorsBytes(t, 1<<16) // 256 KiB of data: whole blocks of hole
	hdrLen := 8 + int(full[0]) + int(full[1])<<8
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(full[:hdrLen]); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(len(full))); err != nil {
		t.Fatal(err)
	}
	hole, ok := firstHole(f, int64(len(full)))
	f.Close()
	if !ok || hole >= int64(len(full)) {
		t.Skipf("this filesystem reports no holes (SEEK_HOLE=%d, ok=%v)", hole, ok)
	}
	c := scanOne(t, root, "checkpoint-300", noQuiet)
	if c.Status != StatusIncomplete || !strings.Contains(c.Reason, "preallocated and never finished") {
		t.Fatalf("got %q, want a hole reported", c)
	}
	// A hole in the middle (an all-zero tensor on a filesystem that punches holes)
	// followed by data is not reported.
	f, err = os.OpenFile(filepath.Join(dir, "model.safetensors"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(full[len(full)-8:], int64(len(full)-8)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if c := scanOne(t, root, "checkpoint-300", noQuiet); c.Status != StatusComplete {
		t.Fatalf("a hole followed by data: %s", c)
	}
	// The same file fully written verifies.
	writeFile(t, filepath.Join(dir, "model.safetensors"), full)
	if c := scanOne(t, root, "checkpoint-300", noQuiet); c.Status != StatusComplete {
		t.Fatalf("written file: %s", c)
	}
}

// Markers and staging names outside the checkpoint: NeMo's -unfinished sibling,
// HF's tmp-checkpoint-N, Orbax's staging, DCP's .metadata.tmp.
func TestScanMarkersAndStaging(t *testing.T) {
	root := t.TempDir()
	writeHF(t, root, 100, hfOpts{})
	writeHF(t, root, 200, hfOpts{})
	writeFile(t, filepath.Join(root, "checkpoint-200-unfinished"), nil)
	writeFile(t, filepath.Join(root, "tmp-checkpoint-300/config.json"), []byte(`{}`))
	writeFile(t, filepath.Join(root, "400.orbax-checkpoint-tmp-1712345678/x"), []byte("x"))
	writeFile(t, filepath.Join(root, "step_500/__0_0.distcp"), []byte("data"))
	writeFile(t, filepath.Join(root, "step_500/.metadata.tmp"), []byte("meta"))
	want := map[string]string{
		"checkpoint-100":                      "complete",
		"checkpoint-200":                      "incomplete: NeMo checkpoint-200-unfinished marker present",
		"tmp-checkpoint-300":                  "incomplete: staging directory of an interrupted atomic save",
		"400.orbax-checkpoint-tmp-1712345678": "incomplete: Orbax staging directory of an interrupted save",
		"step_500":                            "incomplete: .metadata.tmp without .metadata: the save was interrupted",
	}
	list, err := Scan(t.Context(), root, noQuiet)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var steps []int64
	for _, c := range list {
		got[c.Name] = c.String()
		steps = append(steps, c.Step)
	}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: got %q, want %q", n, got[n], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("found %v, want exactly %v", got, want)
	}
	for i := 1; i < len(steps); i++ {
		if steps[i] < steps[i-1] {
			t.Errorf("not sorted by step: %v", steps)
		}
	}
}

// DeepSpeed's latest at the root naming a missing tag is reported by Maintain and
// rewritten to the resume point.
func TestPointerRewrite(t *testing.T) {
	for _, tc := range []struct {
		name, pointer, content, want string
		build                        func(t *testing.T, root string)
	}{
		{"deepspeed missing tag", "latest", "global_step999", "global_step20", func(t *testing.T, r string) {
			writeDeepSpeedTag(t, filepath.Join(r, "global_step10"), 2)
			writeDeepSpeedTag(t, filepath.Join(r, "global_step20"), 2)
		}},
		{"deepspeed empty", "latest", "", "global_step20", func(t *testing.T, r string) {
			writeDeepSpeedTag(t, filepath.Join(r, "global_step20"), 2)
			writeDeepSpeedTag(t, filepath.Join(r, "global_step30"), 2)
			writeFile(t, filepath.Join(r, "global_step30/mp_rank_00_model_states.pt"), nil)
		}},
		{"megatron partial newest", MegatronTracker, "30", "20", func(t *testing.T, r string) {
			writeFile(t, filepath.Join(r, "iter_0000020/mp_rank_00/model_optim_rng.pt"), torchBytes(t, "model_optim_rng", map[string]any{}))
			writeFile(t, filepath.Join(r, "iter_0000030/mp_rank_00/model_optim_rng.pt"), []byte("PK\x03\x04cut"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.build(t, root)
			writeFile(t, filepath.Join(root, tc.pointer), []byte(tc.content))
			rep, err := Maintain(t.Context(), MaintainOptions{Root: root, QuietPeriod: -1})
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(root, tc.pointer))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Fatalf("%s = %q, want %q; notes %q", tc.pointer, b, tc.want, rep.Notes)
			}
			if !strings.Contains(strings.Join(rep.Notes, "\n"), "rewrite "+tc.pointer) {
				t.Errorf("notes do not say the pointer was rewritten: %q", rep.Notes)
			}
		})
	}
}

// A writer's temporary sibling (safetensors' .tmpXXXXXX) is ignored for the verdict
// and reported.
func TestTempLeftoverReported(t *testing.T) {
	root := t.TempDir()
	dir := writeHF(t, root, 100, hfOpts{})
	writeFile(t, filepath.Join(dir, "model.safetensors.tmpA1b2C3"), []byte("half"))
	rep, err := Maintain(t.Context(), MaintainOptions{Root: root, QuietPeriod: -1, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Checkpoints) != 1 || rep.Checkpoints[0].Status != StatusComplete {
		t.Fatalf("got %+v", rep.Checkpoints)
	}
	if want := "checkpoint-100/model.safetensors.tmpA1b2C3: leftover of an interrupted write, ignored"; !slices.Contains(rep.Notes, want) {
		t.Fatalf("notes %q lack %q", rep.Notes, want)
	}
}

// Numbered names that are not steps are not checkpoints: HF's final FSDP save in
// output_dir, Lightning's log versions, a run counter.
func TestScanIgnoresNumberedNonCheckpoints(t *testing.T) {
	root := t.TempDir()
	writeDCP(t, filepath.Join(root, "pytorch_model_fsdp_0"), 2)
	writeFile(t, filepath.Join(root, "lightning_logs/version_0/hparams.yaml"), []byte("lr: 1"))
	writeFile(t, filepath.Join(root, "run_3/model.safetensors"), safetensorsBytes(t, 2))
	writeFile(t, filepath.Join(root, "model-00001-of-00002.safetensors"), safetensorsBytes(t, 2))
	writeDCP(t, filepath.Join(root, "4000"), 1)
	list, err := Scan(t.Context(), root, noQuiet)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(list); !slices.Equal(got, []string{"4000"}) {
		t.Fatalf("found %v, want only the Orbax-style step directory 4000", got)
	}
}

// .bin files are torch.save files in HF's layouts, but other tools use the name too:
// one that is not a zip is accepted; a zip cut short is not.
func TestScanBinOfAnotherFormat(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "step_5/data.bin"), []byte("\x00\x01raw floats"))
	writeFile(t, filepath.Join(root, "step_6/data.bin"), []byte("PK\x03\x04 cut"))
	if c := scanOne(t, root, "step_5", noQuiet); c.Status != StatusComplete {
		t.Errorf("raw .bin: %s", c)
	}
	if c := scanOne(t, root, "step_6", noQuiet); c.Status != StatusIncomplete || !strings.Contains(c.Reason, "data.bin: zip:") {
		t.Errorf("cut zip .bin: %s", c)
	}
}

func TestRootFromArgs(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		root, flag string
		ok         bool
	}{
		{[]string{"python", "train.py", "--output_dir", "out", "--lr", "1"}, "out", "--output_dir", true},
		{[]string{"torchrun", "x.py", "--output-dir=/data/o"}, "/data/o", "--output-dir", true},
		{[]string{"x", "--save_dir", "a", "--save_dir", "b"}, "b", "--save_dir", true},
		{[]string{"x", "--default_root_dir=runs", "--checkpoint_dir", "ck"}, "ck", "--checkpoint_dir", true},
		{[]string{"x", "--output_dir"}, "", "", false},
		{[]string{"x", "--output_dir", "--lr"}, "", "", false},
		{[]string{"x", "--output_dir="}, "", "", false},
		{[]string{"x", "--", "--output_dir", "o"}, "", "", false},
		{[]string{"x", "--output_directory", "o"}, "", "", false},
	} {
		root, flag, ok := RootFromArgs(tc.args)
		if root != tc.root || flag != tc.flag || ok != tc.ok {
			t.Errorf("RootFromArgs(%q) = %q, %q, %v; want %q, %q, %v", tc.args, root, flag, ok, tc.root, tc.flag, tc.ok)
		}
	}
}
