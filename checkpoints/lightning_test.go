package checkpoints

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Lightning's best path is read from ModelCheckpoint's state in the newest .ckpt, and
// a copied last.ckpt gets its step from the pickle; both survive pruning.
func TestLightningBestAndLastCopy(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "lightning_logs", "version_0", "checkpoints")
	best := filepath.Join(dir, "epoch=0-step=10.ckpt")
	state := func(step int) map[string]any {
		return map[string]any{
			"epoch": int64(0), "global_step": int64(step),
			"callbacks": map[string]any{"ModelCheckpoint{'monitor': 'val_loss'}": map[string]any{"best_model_path": best, "best_model_score": 0.5}},
		}
	}
	for _, s := range []int{10, 20, 30, 40} {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("epoch=0-step=%d.ckpt", s)), torchBytes(t, "archive", state(s)))
	}
	writeFile(t, filepath.Join(dir, "last.ckpt"), torchBytes(t, "archive", state(40)))
	list, err := Scan(t.Context(), root, noQuiet)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Checkpoint{}
	for _, c := range list {
		got[filepath.Base(c.Name)] = c
	}
	if c := got["epoch=0-step=10.ckpt"]; !c.Best {
		t.Errorf("best not marked: %+v", c)
	}
	if c := got["last.ckpt"]; c.Step != 40 || !c.Pinned || c.Status != StatusComplete {
		t.Errorf("last.ckpt copy: %+v, want step 40, pinned, complete", c)
	}
	rep, err := Maintain(t.Context(), MaintainOptions{Root: root, Keep: 1, QuietPeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	var pruned []string
	for _, p := range rep.Pruned {
		pruned = append(pruned, filepath.Base(p))
	}
	if want := []string{"epoch=0-step=20.ckpt", "epoch=0-step=30.ckpt"}; !slices.Equal(pruned, want) {
		t.Errorf("pruned %v, want %v", pruned, want)
	}
	if _, err := os.Stat(best); err != nil {
		t.Errorf("best removed: %v", err)
	}
}

// The scanner reads values the way CPython's pickler writes them, memo puts included.
func TestPickleValueAfter(t *testing.T) {
	key := "X\x0b\x00\x00\x00global_step"
	for _, tc := range []struct {
		name string
		pkl  string
		want any
	}{
		{"binint1", key + "K\x2a", int64(42)},
		{"binput then binint2", key + "q\x05M\x10\x27", int64(10000)},
		{"long binput then binint", key + "r\x05\x00\x00\x00J\xa0\x86\x01\x00", int64(100000)},
		{"string", "X\x0f\x00\x00\x00best_model_pathq\x01X\x03\x00\x00\x00a.b", "a.b"},
		{"short binunicode", "X\x0f\x00\x00\x00best_model_path\x8c\x03a.b", "a.b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := "global_step"
			if _, ok := tc.want.(string); ok {
				k = "best_model_path"
			}
			v, ok := pickleValueAfter([]byte("\x80\x02}q\x00("+tc.pkl+"u."), k)
			if !ok || v != tc.want {
				t.Fatalf("got %v, %v; want %v", v, ok, tc.want)
			}
		})
	}
	if _, ok := pickleValueAfter([]byte(key+"K"), "global_step"); ok {
		t.Error("a value cut short was decoded")
	}
}
