package preflight

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trainwrap/trainwrap/checkpoints"
	"github.com/trainwrap/trainwrap/internal/ckptwrite"
	"github.com/trainwrap/trainwrap/rundir"
)

// writeHF writes a real HF Trainer checkpoint output_dir/checkpoint-<step>/: a
// safetensors file of size bytes of weights and trainer_state.json (written last, as
// HF does; complete=false leaves it out, like a save cut short).
func writeHF(t testing.TB, root string, step int, size int, complete bool) string {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprintf("checkpoint-%d", step))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{byte(step)}, size/4*4)
	var buf bytes.Buffer
	err := ckptwrite.WriteSafetensors(&buf, []ckptwrite.Tensor{{Name: "w", DType: "F32", Shape: []int64{int64(len(data) / 4)}, Data: data}}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if complete {
		state := fmt.Sprintf(`{"global_step": %d}`, step)
		if err := os.WriteFile(filepath.Join(dir, "trainer_state.json"), []byte(state), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCheckpointCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		build  func(t *testing.T, root, manifests string)
		want   Status
		value  string
		reason string
		fixed  string
	}{
		{"none yet", func(*testing.T, string, string) {}, OK, "none yet", "", ""},
		{"newest complete", func(t *testing.T, root, _ string) {
			writeHF(t, root, 100, 64, true)
			writeHF(t, root, 200, 64, true)
		}, OK, "checkpoint-200 (hf, step 200) complete", "", ""},
		{"newest cut short", func(t *testing.T, root, _ string) {
			writeHF(t, root, 100, 64, true)
			writeHF(t, root, 200, 64, true)
			writeHF(t, root, 300, 64, false)
		}, Warn, "checkpoint-300 (hf, step 300) incomplete", "resume will use checkpoint-200", "quarantined checkpoint-300 to .trainwrap/quarantine"},
		{"newest rotted after hashing", func(t *testing.T, root, manifests string) {
			writeHF(t, root, 100, 64, true)
			dir := writeHF(t, root, 200, 64, true)
			if _, _, err := checkpoints.Hash(context.Background(), root, manifests, checkpoints.ScanOptions{QuietPeriod: -1}, checkpoints.HashOptions{}); err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, "model.safetensors")
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-1] ^= 0xff // one flipped byte in the weights, same size
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, Warn, "checkpoint-200 (hf, step 200) incomplete", "corrupt", "quarantined checkpoint-200"},
		{"only a broken one", func(t *testing.T, root, _ string) {
			writeHF(t, root, 100, 64, false)
		}, Warn, "checkpoint-100 (hf, step 100) incomplete", "the job will start from scratch", "quarantined checkpoint-100"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			manifests := rundir.New(t.TempDir()).Manifests()
			tc.build(t, root, manifests)
			before := snapshot(t, root)
			c := &CheckpointCheck{Root: root, ManifestDir: manifests, QuietPeriod: -1}
			r := runCheck(t, c)
			wantResult(t, r, tc.want, tc.reason)
			if r.Value != tc.value {
				t.Errorf("value %q, want %q", r.Value, tc.value)
			}
			rep := runChecks([]Check{c}, RunOptions{Fix: true})
			wantResult(t, rep.Results[0], OK)
			if !strings.HasPrefix(rep.Results[0].Fixed, tc.fixed) {
				t.Errorf("Fixed %q, want it to start with %q", rep.Results[0].Fixed, tc.fixed)
			}
			if after := snapshot(t, root); !sameFiles(before, after) {
				t.Errorf("the fix lost files: %d before, %d after", count(before), count(after))
			}
		})
	}
	wantResult(t, runCheck(t, &CheckpointCheck{}), Skip, "no --checkpoint-dir")
	wantResult(t, runCheck(t, &CheckpointCheck{Root: filepath.Join(t.TempDir(), "out")}), Skip, "does not exist yet")
}

// TestCheckpointBeingWritten: a checkpoint with a file open by a live process is in
// progress: reported, never judged, never touched by --fix.
func TestCheckpointBeingWritten(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeHF(t, root, 100, 64, true)
	dir := writeHF(t, root, 200, 64, false)
	startProc(t, nil, "sh", "-c", `exec 3>>"$0"; exec sleep 3600`, filepath.Join(dir, "model.safetensors"))
	c := &CheckpointCheck{Root: root, QuietPeriod: -1}
	waitFor(t, func() bool { return runCheck(t, c).Value == "checkpoint-200 (hf, step 200) in-progress" })
	wantResult(t, runCheck(t, c), OK, "still being written")
}

// TestDiskFixPrunesByPolicy fills a real tmpfs with checkpoints until it is short of
// space: --fix prunes through the checkpoints policy (under MinFree it keeps only the
// newest complete checkpoint), and nothing but the pruned checkpoints' files is gone.
func TestDiskFixPrunesByPolicy(t *testing.T) {
	root := mountTmpfs(t, "size=16m")
	for step := 100; step <= 500; step += 100 {
		writeHF(t, root, step, 2<<20, true)
	}
	writeTree(t, root, map[string]string{"runs/events.out.tfevents": "tensorboard", "config.json": `{"lr": 0.1}`})
	beforeFiles := snapshot(t, root)
	manifests := rundir.New(t.TempDir()).Manifests()
	c := &DiskCheck{Paths: []DiskPath{{Label: "checkpoints", Path: root}}, MinFree: 8 * MB, CheckpointRoot: root, ManifestDir: manifests, Keep: 3, QuietPeriod: -1}
	wantResult(t, runCheck(t, c), Warn, "checkpoints:", "prune checkpoints (--fix)")

	rep := runChecks([]Check{c}, RunOptions{Fix: true})
	wantResult(t, rep.Results[0], OK)
	// The order of the names is the checkpoints package's; the set is the policy's.
	names, _, _ := strings.Cut(strings.TrimPrefix(rep.Results[0].Fixed, "pruned "), " (")
	pruned := strings.Split(names, ", ")
	slices.Sort(pruned)
	if want := []string{"checkpoint-100", "checkpoint-200", "checkpoint-300", "checkpoint-400"}; !slices.Equal(pruned, want) {
		t.Errorf("Fixed %q, want %v pruned", rep.Results[0].Fixed, want)
	}
	after := snapshot(t, root)
	for _, keep := range []string{"checkpoint-500/model.safetensors", "checkpoint-500/trainer_state.json", "runs/events.out.tfevents", "config.json"} {
		b, err := os.ReadFile(filepath.Join(root, keep))
		if err != nil {
			t.Errorf("%s: %v", keep, err)
			continue
		}
		if after[hashOf(b)] == 0 {
			t.Errorf("%s changed", keep)
		}
	}
	for h, n := range after {
		if beforeFiles[h] < n {
			t.Error("the fix wrote a file that was not there before")
		}
	}
	// Nothing but the four pruned checkpoints (two files each) is gone.
	if lost := count(beforeFiles) - count(after); lost != 8 {
		t.Errorf("%d files gone, want the 8 of the 4 pruned checkpoints", lost)
	}
}

// TestDiskFixLeavesOtherFilesystems: when the short filesystem is not the checkpoint
// root's, pruning cannot help and the fix touches nothing.
func TestDiskFixLeavesOtherFilesystems(t *testing.T) {
	full := mountTmpfs(t, "size=4m")
	fillTo(t, full, 0)
	ckpt := t.TempDir()
	for step := 100; step <= 500; step += 100 {
		writeHF(t, ckpt, step, 64, true)
	}
	before := snapshot(t, ckpt)
	c := &DiskCheck{Paths: []DiskPath{{Label: "logs", Path: full}}, MinFree: 1 * MB, CheckpointRoot: ckpt, Keep: 1, QuietPeriod: -1}
	rep := runChecks([]Check{c}, RunOptions{Fix: true})
	wantResult(t, rep.Results[0], Fail, "fix failed: the checkpoint root's filesystem has room")
	if after := snapshot(t, ckpt); !sameFiles(before, after) {
		t.Error("the fix pruned checkpoints on a filesystem that had room")
	}
}
