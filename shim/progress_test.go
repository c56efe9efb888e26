package shim

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBuiltinStep reads the step from real lines of HF Trainer, tqdm, DeepSpeed,
// Megatron and Lightning jobs, and none from the lines that carry no global step.
func TestBuiltinStep(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "testdata", "progress", "steps.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if sc.Text() == "" || strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		want, rest, _ := strings.Cut(sc.Text(), "\t")
		src, line, ok := strings.Cut(rest, "\t")
		if !ok {
			t.Fatalf("steps.tsv: %q: want want<TAB>source<TAB>line", sc.Text())
		}
		n++
		got, found := builtinStep([]byte(line))
		if want == "none" {
			if found {
				t.Errorf("%s: step %d from %q, want none", src, got, line)
			}
			continue
		}
		w, err := strconv.ParseInt(want, 10, 64)
		if err != nil {
			t.Fatalf("steps.tsv: want %q: %v", want, err)
		}
		if !found || got != w {
			t.Errorf("%s: step %d (found %v) from %q, want %d", src, got, found, line, w)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("steps.tsv: only %d lines", n)
	}
}

// Without --progress-regex the step of an HF Trainer job comes from its tqdm bar (here
// rewritten with \r, as on a terminal), not from its log dicts or another bar.
func TestBuiltinStepWithoutProgressRegex(t *testing.T) {
	script := `echo "Loading checkpoint shards: 100%|##########| 2/2 [00:01<00:00,  1.9it/s]"
printf '\r 83%%|########3 | 100/120 [00:31<00:06,  2.95it/s]'
printf '\r 84%%|########4 | 101/120 [01:07<03:28, 10.97s/it]'
echo; echo "{'loss': 2.119, 'grad_norm': 37.65, 'learning_rate': 4.58e-05, 'epoch': 0.84}"
exit 1`
	s := startSupervisor(t, testOptions{MaxFailuresWithoutProgress: 1, BackoffInitial: 10 * time.Millisecond}, "sh", "-c", script)
	s.wait(time.Minute)
	recs := s.records()
	if len(recs) == 0 || recs[0].StepEnd != 101 {
		t.Fatalf("records %+v, want the first attempt at step 101\n%s", recs, s.stderr.String())
	}
}

// containsStepEq is bytes.Contains(b, "step=") wherever the "=" falls.
func TestContainsStepEq(t *testing.T) {
	for _, s := range []string{
		"", "=", "step", "step=", "=step=", "x step=1", "stepp=", "ste=p=", "global_step=34,",
		"a=b c=d step =3", "step==", "=====", "steps=2", "st=ep=", "{'step': 12}", "p=step=",
	} {
		if got, want := containsStepEq([]byte(s)), strings.Contains(s, "step="); got != want {
			t.Errorf("containsStepEq(%q) = %v, want %v", s, got, want)
		}
	}
}
