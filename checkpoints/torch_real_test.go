package checkpoints

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// Files written by the real torch.save pass the structure check, and the Lightning
// scanner reads their step and best path. Skipped where python3 has no torch
// (a failure under CI=true).
func TestRealTorchSave(t *testing.T) {
	py := testkit.NeedTorch(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "epoch=3-step=1234.ckpt")
	script := `
import sys, torch
torch.save({"epoch": 3, "global_step": 1234, "state_dict": {"w": torch.ones(300)},
            "callbacks": {"ModelCheckpoint{}": {"best_model_path": "/x/epoch=1-step=400.ckpt"}}}, sys.argv[1])
torch.save({"w": torch.zeros(10)}, sys.argv[2])
`
	plain := filepath.Join(dir, "optimizer.pt")
	if out, err := exec.Command(py, "-c", script, ckpt, plain).CombinedOutput(); err != nil {
		t.Fatalf("torch.save: %v\n%s", err, out)
	}
	for _, p := range []string{ckpt, plain} {
		size := fileSize(t, p)
		if why, _ := verifyFile(p, size); why != "" {
			t.Errorf("%s written by torch.save judged bad: %s", filepath.Base(p), why)
		}
	}
	step, best := lightningInfo(ckpt)
	if step != 1234 || best != "/x/epoch=1-step=400.ckpt" {
		t.Errorf("lightningInfo = %d, %q", step, best)
	}
}
