package checkpoints

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

func names(list []Checkpoint) []string {
	var out []string
	for _, c := range list {
		out = append(out, c.Name)
	}
	return out
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestPrunePolicy(t *testing.T) {
	for _, tc := range []struct {
		name        string
		build       func(t *testing.T, root string)
		opt         MaintainOptions
		left        []string // checkpoints under the root after Maintain
		quarantined []string
		resume      string
		note        string
	}{
		{
			name: "keep last 3",
			build: func(t *testing.T, r string) {
				for _, s := range []int64{100, 200, 300, 400, 500} {
					writeHF(t, r, s, hfOpts{})
				}
			},
			left:   []string{"checkpoint-300", "checkpoint-400", "checkpoint-500"},
			resume: "checkpoint-500",
		},
		{
			name: "best kept beyond keep",
			build: func(t *testing.T, r string) {
				for _, s := range []int64{100, 200, 300, 400} {
					writeHF(t, r, s, hfOpts{best: "checkpoint-100"})
				}
			},
			opt:    MaintainOptions{Keep: 1},
			left:   []string{"checkpoint-100", "checkpoint-400"},
			resume: "checkpoint-400",
		},
		{
			name: "newest complete kept and partial newer quarantined",
			build: func(t *testing.T, r string) {
				writeHF(t, r, 100, hfOpts{})
				writeHF(t, r, 200, hfOpts{})
				d := writeHF(t, r, 300, hfOpts{})
				os.Remove(filepath.Join(d, "trainer_state.json"))
			},
			opt:         MaintainOptions{Keep: 1},
			left:        []string{"checkpoint-200"},
			quarantined: []string{"checkpoint-300"},
			resume:      "checkpoint-200",
		},
		{
			// A restart on a loss spike at step 250: checkpoint-300 holds the spiked
			// weights, so it is moved aside and 200 is the resume point.
			name: "checkpoints at or after an anomaly quarantined",
			build: func(t *testing.T, r string) {
				for _, s := range []int64{100, 200, 300} {
					writeHF(t, r, s, hfOpts{})
				}
			},
			opt:         MaintainOptions{Before: 250, BeforeReason: "saved after the loss spike at step 250"},
			left:        []string{"checkpoint-100", "checkpoint-200"},
			quarantined: []string{"checkpoint-300"},
			resume:      "checkpoint-200",
			note:        "quarantine checkpoint-300",
		},
		{
			name: "older incomplete left alone, deleted on request",
			build: func(t *testing.T, r string) {
				d := writeHF(t, r, 100, hfOpts{})
				writeFile(t, filepath.Join(d, "scheduler.pt"), nil)
				writeHF(t, r, 200, hfOpts{})
			},
			opt:    MaintainOptions{Keep: 5},
			left:   []string{"checkpoint-100", "checkpoint-200"},
			resume: "checkpoint-200",
		},
		{
			name: "delete incomplete",
			build: func(t *testing.T, r string) {
				d := writeHF(t, r, 100, hfOpts{})
				writeFile(t, filepath.Join(d, "scheduler.pt"), nil)
				writeHF(t, r, 200, hfOpts{})
				d = writeHF(t, r, 300, hfOpts{})
				writeFile(t, filepath.Join(d, hfIncompleteMarker), nil)
			},
			opt:    MaintainOptions{Keep: 5, DeleteIncomplete: true},
			left:   []string{"checkpoint-200"},
			resume: "checkpoint-200",
		},
		{
			name: "deepspeed latest target pinned",
			build: func(t *testing.T, r string) {
				for _, s := range []int{10, 20, 30} {
					writeDeepSpeedTag(t, filepath.Join(r, fmt.Sprintf("global_step%d", s)), 2)
				}
				writeFile(t, filepath.Join(r, "latest"), []byte("global_step10"))
			},
			opt:    MaintainOptions{Keep: 1, DryRun: true},
			left:   []string{"global_step10", "global_step20", "global_step30"},
			resume: "global_step30",
			note:   "would delete global_step20",
		},
		{
			name: "lightning last.ckpt link target pinned",
			build: func(t *testing.T, r string) {
				for _, s := range []int{10, 20, 30} {
					writeFile(t, filepath.Join(r, fmt.Sprintf("epoch=0-step=%d.ckpt", s)), torchBytes(t, "archive", map[string]any{"global_step": int64(s)}))
				}
				if err := os.Symlink(filepath.Join(r, "epoch=0-step=10.ckpt"), filepath.Join(r, "last.ckpt")); err != nil {
					t.Fatal(err)
				}
			},
			opt:    MaintainOptions{Keep: 1},
			left:   []string{"epoch=0-step=10.ckpt", "epoch=0-step=30.ckpt"},
			resume: "epoch=0-step=30.ckpt",
		},
		{
			name: "min free disk prunes to one",
			build: func(t *testing.T, r string) {
				for _, s := range []int64{1, 2, 3} {
					writeHF(t, r, s, hfOpts{})
				}
			},
			opt:    MaintainOptions{Keep: 3, MinFreeDisk: 1 << 62},
			left:   []string{"checkpoint-3"},
			resume: "checkpoint-3",
			note:   "below --min-free-disk",
		},
		{
			name: "nothing complete: partials quarantined",
			build: func(t *testing.T, r string) {
				d := writeHF(t, r, 5, hfOpts{})
				os.Remove(filepath.Join(d, "model.safetensors"))
			},
			quarantined: []string{"checkpoint-5"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.build(t, root)
			opt := tc.opt
			opt.Root, opt.QuietPeriod = root, -1
			rep, err := Maintain(t.Context(), opt)
			if err != nil {
				t.Fatal(err)
			}
			after, err := Scan(t.Context(), root, noQuiet)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(after); !slices.Equal(got, tc.left) {
				t.Errorf("left %v, want %v; notes %q", got, tc.left, rep.Notes)
			}
			if !slices.Equal(rep.Quarantined, tc.quarantined) {
				t.Errorf("quarantined %v, want %v", rep.Quarantined, tc.quarantined)
			}
			for _, q := range tc.quarantined {
				if !exists(filepath.Join(root, StateDirName, QuarantineDir, q)) {
					t.Errorf("%s not in the quarantine", q)
				}
			}
			if got := ""; rep.Resume != nil {
				got = rep.Resume.Name
				if got != tc.resume {
					t.Errorf("resume %s, want %s", got, tc.resume)
				}
			} else if tc.resume != "" {
				t.Errorf("no resume point, want %s", tc.resume)
			}
			if tc.note != "" && !strings.Contains(strings.Join(rep.Notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", rep.Notes, tc.note)
			}
			if len(rep.Pruned) > 0 && rep.BytesFreed <= 0 {
				t.Errorf("pruned %v but freed %d bytes", rep.Pruned, rep.BytesFreed)
			}
			if entries, _ := os.ReadDir(filepath.Join(root, StateDirName, TrashDir)); len(entries) != 0 {
				t.Errorf("trash not emptied: %v", entries)
			}
		})
	}
}

// A symlink pointing outside the root is never followed, neither as a checkpoint nor
// inside one, and pruning leaves its target alone.
func TestPruneNeverFollowsSymlinksOut(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	for _, s := range []int64{100, 200, 300} {
		writeHF(t, root, s, hfOpts{})
	}
	ext := writeHF(t, outside, 50, hfOpts{})
	if err := os.Symlink(ext, filepath.Join(root, "checkpoint-50")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(ext, "model.safetensors"), filepath.Join(root, "checkpoint-100", "extra.safetensors")); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, outside)
	rep, err := Maintain(t.Context(), MaintainOptions{Root: root, Keep: 1, QuietPeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names(rep.Checkpoints), "checkpoint-50") {
		t.Errorf("the symlinked checkpoint was listed: %v", names(rep.Checkpoints))
	}
	if !slices.Equal(rep.Pruned, []string{"checkpoint-100", "checkpoint-200"}) {
		t.Errorf("pruned %v", rep.Pruned)
	}
	if after := snapshot(t, outside); !sameSnapshot(before, after) {
		t.Fatalf("outside the root changed:\nbefore %v\nafter  %v", before, after)
	}
	if !exists(filepath.Join(root, "checkpoint-50")) {
		t.Error("the symlink itself was removed")
	}
}

// snapshot records every path under dir with its size, mode and mtime.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%d %v %d", fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSnapshot(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A checkpoint whose files cannot be listed is reported and left alone, even when
// incomplete checkpoints are to be deleted.
func TestPruneLeavesUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every directory")
	}
	root := t.TempDir()
	writeHF(t, root, 100, hfOpts{})
	d := writeHF(t, root, 200, hfOpts{})
	locked := filepath.Join(d, "pytorch_model_fsdp_0")
	writeDCP(t, locked, 1)
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	rep, err := Maintain(t.Context(), MaintainOptions{Root: root, QuietPeriod: -1, DeleteIncomplete: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Pruned)+len(rep.Quarantined) != 0 || !exists(d) {
		t.Fatalf("acted on an unreadable checkpoint: pruned %v quarantined %v", rep.Pruned, rep.Quarantined)
	}
	if c := scanOne(t, root, "checkpoint-200", noQuiet); !strings.Contains(c.Reason, "cannot read") {
		t.Fatalf("got %q", c)
	}
}

// A checkpoint with a file held open by a live process (here a child sleeping with
// the file as its stdout) is in progress and untouched by prune.
func TestInProgressOpenFile(t *testing.T) {
	root := t.TempDir()
	for _, s := range []int64{100, 200, 300} {
		writeHF(t, root, s, hfOpts{})
	}
	f, err := os.OpenFile(filepath.Join(root, "checkpoint-100", "optimizer.pt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sleep", "60")
	cmd.Stdout = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close() // only the child holds it now
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	want := fmt.Sprintf("optimizer.pt is open in process %d", cmd.Process.Pid)
	c := scanOne(t, root, "checkpoint-100", ScanOptions{QuietPeriod: -1})
	if c.Status != StatusInProgress || c.Reason != want {
		t.Fatalf("got %q, want in-progress: %s", c, want)
	}
	rep, err := Maintain(t.Context(), MaintainOptions{Root: root, Keep: 1, QuietPeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Pruned, []string{"checkpoint-200"}) || !exists(filepath.Join(root, "checkpoint-100", "optimizer.pt")) {
		t.Fatalf("pruned %v; the open checkpoint must stay", rep.Pruned)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if c := scanOne(t, root, "checkpoint-100", ScanOptions{QuietPeriod: -1}); c.Status != StatusComplete {
		t.Fatalf("after the writer exited: %s", c)
	}
}

// A checkpoint whose files a goroutine is still writing slowly is in progress by the
// quiet period, and prune leaves it.
func TestInProgressSlowWriter(t *testing.T) {
	root := t.TempDir()
	writeHF(t, root, 100, hfOpts{})
	writeHF(t, root, 200, hfOpts{})
	dir := filepath.Join(root, "checkpoint-300")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("part-%d.bin", i%5)), []byte("PK\x03\x04 partial"), 0o644)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	testkit.Eventually(t, time.Minute, "the writer's first file", func() bool { return exists(filepath.Join(dir, "part-0.bin")) })
	const quiet = 300 * time.Millisecond
	opt := ScanOptions{QuietPeriod: quiet, IgnoreOpenFiles: true}
	// The finished checkpoints settle after the quiet period; the one being written
	// never does.
	testkit.Eventually(t, time.Minute, "checkpoint-200 to settle", func() bool {
		return scanOne(t, root, "checkpoint-200", opt).Status == StatusComplete
	})
	c := scanOne(t, root, "checkpoint-300", opt)
	if c.Status != StatusInProgress || !strings.Contains(c.Reason, "quiet period 300ms") {
		t.Fatalf("got %q, want in-progress by the quiet period", c)
	}
	rep, err := Maintain(t.Context(), MaintainOptions{Root: root, Keep: 1, QuietPeriod: quiet, DeleteIncomplete: true})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(rep.Pruned, "checkpoint-300") || slices.Contains(rep.Quarantined, "checkpoint-300") || !exists(dir) {
		t.Fatalf("the checkpoint being written was touched: pruned %v quarantined %v", rep.Pruned, rep.Quarantined)
	}
	if rep.Resume == nil || rep.Resume.Name != "checkpoint-200" {
		t.Fatalf("resume %+v, want checkpoint-200", rep.Resume)
	}
}

// A save that has only just created its directory is in progress, not incomplete:
// the directory's own mtime counts for the quiet period.
func TestInProgressEmptyNewDirectory(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "checkpoint-500"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := scanOne(t, root, "checkpoint-500", ScanOptions{QuietPeriod: time.Minute})
	if c.Status != StatusInProgress || !strings.Contains(c.Reason, "the checkpoint directory changed") {
		t.Fatalf("got %q, want in-progress", c)
	}
	if c := scanOne(t, root, "checkpoint-500", noQuiet); c.Status != StatusIncomplete {
		t.Fatalf("without a quiet period: %q, want incomplete", c)
	}
}

// Over random trees: nothing outside the root changes, and the newest complete and
// the best checkpoint always survive, whatever the policy.
func TestPruneProperties(t *testing.T) {
	for seed := uint64(1); seed <= 25; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			root, outside := t.TempDir(), t.TempDir()
			writeHF(t, outside, 7, hfOpts{})
			writeFile(t, filepath.Join(outside, "precious.txt"), []byte("keep me"))
			n := 2 + rng.IntN(7)
			steps := rng.Perm(50)[:n]
			best := ""
			if rng.IntN(2) == 0 {
				best = fmt.Sprintf("checkpoint-%d", (steps[rng.IntN(n)]+1)*10)
			}
			for _, s := range steps {
				d := writeHF(t, root, int64(s+1)*10, hfOpts{best: best})
				switch rng.IntN(5) {
				case 0:
					writeFile(t, filepath.Join(d, "optimizer.pt"), nil)
				case 1:
					os.Remove(filepath.Join(d, "trainer_state.json"))
				}
				if rng.IntN(4) == 0 {
					if err := os.Symlink(filepath.Join(outside, "precious.txt"), filepath.Join(d, "link.txt")); err != nil {
						t.Fatal(err)
					}
				}
			}
			if rng.IntN(2) == 0 {
				if err := os.Symlink(filepath.Join(outside, "checkpoint-7"), filepath.Join(root, "checkpoint-999")); err != nil {
					t.Fatal(err)
				}
			}
			before, err := Scan(t.Context(), root, noQuiet)
			if err != nil {
				t.Fatal(err)
			}
			var newest, bestC, bestAny string
			var top int64 = -1
			for _, c := range before {
				if c.Status == StatusComplete && c.Step > top {
					newest, top = c.Name, c.Step
				}
				if c.Best {
					bestAny = c.Name
					if c.Status == StatusComplete {
						bestC = c.Name
					}
				}
			}
			snap := snapshot(t, outside)
			opt := MaintainOptions{Root: root, Keep: 1 + rng.IntN(3), DeleteIncomplete: rng.IntN(2) == 0, QuietPeriod: -1}
			if rng.IntN(3) == 0 {
				opt.MinFreeDisk = 1 << 62
			}
			rep, err := Maintain(t.Context(), opt)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSnapshot(snap, snapshot(t, outside)) {
				t.Fatal("something outside the root changed")
			}
			for _, must := range []string{newest, bestC} {
				if must != "" && !exists(filepath.Join(root, must, "trainer_state.json")) {
					t.Errorf("%s was removed (opt %+v, pruned %v, quarantined %v)", must, opt, rep.Pruned, rep.Quarantined)
				}
			}
			if bestAny != "" && slices.Contains(rep.Pruned, bestAny) {
				t.Errorf("the best checkpoint %s was deleted", bestAny)
			}
			if newest != "" && (rep.Resume == nil || rep.Resume.Name != newest) {
				t.Errorf("resume %+v, want %s", rep.Resume, newest)
			}
		})
	}
}

// Every deletion and quarantine is reported with why and how big, the bytes being
// what the checkpoint held on disk; a dry run reports the same without doing it.
func TestMaintainActionsSayWhyAndHowBig(t *testing.T) {
	for _, dry := range []bool{true, false} {
		root := t.TempDir()
		for _, s := range []int64{100, 200, 300} {
			writeHF(t, root, s, hfOpts{})
		}
		partial := filepath.Join(root, "checkpoint-400")
		writeFile(t, filepath.Join(partial, "config.json"), []byte(`{"model_type":"llama"}`))
		var want []Action
		for _, c := range []struct{ name, action, why string }{
			{"checkpoint-100", ActionDelete, "beyond the newest 2 complete"},
			{"checkpoint-400", ActionQuarantine, "incomplete: trainer_state.json missing"},
		} {
			var size int64
			err := filepath.Walk(filepath.Join(root, c.name), func(_ string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					size += fi.Size()
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, Action{Checkpoint: c.name, Action: c.action, Reason: c.why, Bytes: size})
		}
		rep, err := Maintain(t.Context(), MaintainOptions{Root: root, Keep: 2, QuietPeriod: -1, DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Actions) != len(want) {
			t.Fatalf("dry run %v: actions %+v, want %+v", dry, rep.Actions, want)
		}
		for i, a := range rep.Actions {
			w := want[i]
			if a.Checkpoint != w.Checkpoint || a.Action != w.Action || !strings.HasPrefix(a.Reason, w.Reason) || a.Bytes != w.Bytes {
				t.Errorf("dry run %v: action %d = %+v, want %+v", dry, i, a, w)
			}
		}
		if rep.BytesFreed != want[0].Bytes {
			t.Errorf("dry run %v: bytes freed %d, want %d (the deleted one only)", dry, rep.BytesFreed, want[0].Bytes)
		}
		if note := "quarantine checkpoint-400 (" + FormatSize(uint64(want[1].Bytes)) + ") to "; !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, note) }) {
			t.Errorf("dry run %v: no note %q in %q", dry, note, rep.Notes)
		}
		if exists(partial) == !dry {
			t.Errorf("dry run %v: checkpoint-400 still there: %v", dry, exists(partial))
		}
	}
}
