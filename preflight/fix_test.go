package preflight

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trainwrap/trainwrap/rundir"
)

// snapshot maps each regular file's content hash to how many files hold it: a fix
// may move a file (into quarantine or trash) but must never lose one.
func snapshot(t *testing.T, root string) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[hashOf(b)]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hashOf is the hex SHA-256 of b.
func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sameFiles reports whether two snapshots hold the same contents the same number of
// times.
func sameFiles(a, b map[string]int) bool { return maps.Equal(a, b) }

// writeTree writes files (path relative to root -> content).
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFixKeepsUserData breaks everything --fix can repair, runs every check with
// --fix, and compares the checkpoint tree and the job's config before and after:
// every file is still there with the same content (a quarantined checkpoint is moved,
// not changed).
func TestFixKeepsUserData(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	ckpt := filepath.Join(root, "out")
	writeHF(t, ckpt, 100, 4096, true)
	writeHF(t, ckpt, 200, 4096, true)
	writeHF(t, ckpt, 300, 4096, false) // cut short: --fix quarantines it
	writeTree(t, ckpt, map[string]string{"runs/events.out.tfevents": "tensorboard"})
	cfgDir := filepath.Join(root, "cfg")
	writeTree(t, cfgDir, map[string]string{"train.json": `{"lr": 0.1,,}`}) // broken: must stay broken
	dir := rundir.New(filepath.Join(root, "run"))
	writeTree(t, dir.Path, map[string]string{"state.json": `{"run_id": "x`, "lock": ""})

	beforeCkpt, beforeCfg := snapshot(t, ckpt), snapshot(t, cfgDir)
	cfg := Config{
		StateDir:       dir.Path,
		LogDir:         filepath.Join(root, "logs"), // missing: fixed by creating it
		CheckpointRoot: ckpt,
		MinFreeDisk:    1 * KB,
		MinFreeMemory:  1 * KB,
		ShmMin:         1 * KB,
		JobConfigs:     []string{filepath.Join(cfgDir, "train.json")},
		QuietPeriod:    -1,
	}
	rep := runChecks(All(cfg), RunOptions{Fix: true})
	byName := map[string]Result{}
	for _, r := range rep.Results {
		byName[r.Check] = r
	}
	for _, name := range []string{"dirs", "state", "checkpoint"} {
		if byName[name].Fixed == "" {
			t.Errorf("the %s fix did not run: %+v", name, byName[name])
		}
	}
	if _, err := os.Stat(filepath.Join(ckpt, ".trainwrap", "quarantine", "checkpoint-300", "model.safetensors")); err != nil {
		t.Errorf("checkpoint-300 not in quarantine: %v", err)
	}
	wantResult(t, byName["job-config"], Fail, "train.json:1:12: invalid JSON")

	if after := snapshot(t, ckpt); !maps.Equal(beforeCkpt, after) {
		t.Errorf("checkpoint tree changed under --fix: %d files before, %d after", count(beforeCkpt), count(after))
	}
	if after := snapshot(t, cfgDir); !maps.Equal(beforeCfg, after) {
		t.Error("--fix rewrote the job's config")
	}
	names, _ := os.ReadDir(dir.Path)
	var kept []string
	for _, n := range names {
		kept = append(kept, n.Name())
	}
	if !slices.ContainsFunc(kept, func(n string) bool { return strings.HasPrefix(n, "state.json.corrupt-") }) {
		t.Errorf("run dir holds %v: the corrupt state.json was not kept", kept)
	}
}

func count(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
