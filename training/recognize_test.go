package training

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fixtureCase is one line of a testdata/*.txt fixture and what it must yield.
type fixtureCase struct {
	where string // file:line
	line  string
	step  int64
	want  map[string]float64
}

func loadFixtures(t *testing.T) []fixtureCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var cases []fixtureCase
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		n := 0
		for sc.Scan() {
			n++
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "# "), l == "":
			case strings.HasPrefix(l, "=> "):
				if len(cases) == 0 {
					t.Fatalf("%s:%d: => with no line above", f, n)
				}
				c := &cases[len(cases)-1]
				c.want = map[string]float64{}
				for _, kv := range strings.Fields(l[3:]) {
					k, v, _ := strings.Cut(kv, "=")
					x, err := strconv.ParseFloat(v, 64)
					if err != nil {
						t.Fatalf("%s:%d: %v", f, n, err)
					}
					if k == "step" {
						c.step = int64(x)
					} else {
						c.want[k] = x
					}
				}
			default:
				cases = append(cases, fixtureCase{where: f + ":" + strconv.Itoa(n), line: strings.ReplaceAll(l, `\r`, "\r"), step: -1})
			}
		}
		fh.Close()
	}
	return cases
}

func TestRecognizeFixtures(t *testing.T) {
	r := NewRecognizer(nil)
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	for _, c := range loadFixtures(t) {
		t.Run(c.where, func(t *testing.T) {
			got := r.Recognize(nil, []byte(c.line), -1, 2, now)
			if len(got) != len(c.want) {
				t.Fatalf("%q:\n got %v\nwant %v", c.line, got, c.want)
			}
			for _, s := range got {
				w, ok := c.want[s.Name]
				if !ok || math.Abs(s.Value-w) > 1e-9*math.Max(1, math.Abs(w)) {
					t.Errorf("%s = %v, want %v (all: %v)", s.Name, s.Value, w, got)
				}
				if s.Step != c.step || s.Attempt != 2 || !s.Time.Equal(now) {
					t.Errorf("%s: step %d attempt %d time %v, want step %d attempt 2 time %v", s.Name, s.Step, s.Attempt, s.Time, c.step, now)
				}
			}
		})
	}
}

// TestRecognizeCallerStep: a line that carries no step takes the caller's; one that
// does keeps its own.
func TestRecognizeCallerStep(t *testing.T) {
	r := NewRecognizer(nil)
	for _, c := range []struct {
		line string
		want int64
	}{
		{"{'loss': 0.5, 'learning_rate': 1e-05, 'epoch': 0.1}", 77},
		{"[Rank 0] step=40, skipped=0, lr=[5e-05], mom=[[0.9, 0.999]]", 40},
		{" 50%|█████     | 50/100 [00:05<00:05,  9.80it/s]", 77}, // the caller's step wins over a bar's n
	} {
		got := r.Recognize(nil, []byte(c.line), 77, 1, time.Time{})
		if len(got) == 0 {
			t.Fatalf("%q: no samples", c.line)
		}
		for _, s := range got {
			if s.Step != c.want {
				t.Errorf("%q: %s step %d, want %d", c.line, s.Name, s.Step, c.want)
			}
		}
	}
}

func TestRecognizeCustom(t *testing.T) {
	acc, err := ParseCustom(`val_acc=acc: ([0-9.]+)`)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := ParseCustom(`tokens=[0-9]+(?: tok/s)`)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := ParseCustom(`loss=iter \d+: loss ([0-9.]+)`) // nanoGPT's line feeds the standard loss
	if err != nil {
		t.Fatal(err)
	}
	r := NewRecognizer([]Custom{acc, whole, loss})
	for _, c := range []struct {
		line string
		want []Sample
	}{
		{"epoch 3 acc: 0.913 f1: 0.88", []Sample{{Name: "val_acc", Value: 0.913}}},
		{"throughput 51234 tok/s", []Sample{{Name: "tokens", Value: 51234}}},
		{"iter 100: loss 2.3456, time 45.67ms, mfu 30.21%", []Sample{{Name: Loss, Value: 2.3456}}},
		{"acc: n/a", nil},
		{"nothing here", nil},
	} {
		got := r.Recognize(nil, []byte(c.line), 5, 1, time.Time{})
		if len(got) != len(c.want) {
			t.Fatalf("%q: got %v, want %v", c.line, got, c.want)
		}
		for i := range got {
			if got[i].Name != c.want[i].Name || got[i].Value != c.want[i].Value || got[i].Step != 5 {
				t.Errorf("%q: got %+v, want %+v at step 5", c.line, got[i], c.want[i])
			}
		}
	}
}

func TestParseCustomErrors(t *testing.T) {
	for _, c := range []struct {
		spec, want string
	}{
		{"no_equals", "want NAME=REGEX"},
		{"=x([0-9]+)", "name \"\" must be"},
		{"9lives=([0-9]+)", "must be letters, digits and _"},
		{"val-acc=([0-9]+)", "must be letters, digits and _"},
		{"acc=", "the regexp is empty"},
		{"acc=([0-9]+", "does not compile: missing closing )"},
		{"acc=acc: ([a-z]+)", "its first group can never match a digit"},
		{"acc=^done$", "the regexp can never match a digit"},
	} {
		_, err := ParseCustom(c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseCustom(%q) = %v, want one line with %q", c.spec, err, c.want)
		}
	}
	for _, ok := range []string{"acc=acc: (.+)", "x_1=v=(\\d+)", "_t=t=([-+]?\\d*\\.?\\d+)"} {
		if _, err := ParseCustom(ok); err != nil {
			t.Errorf("ParseCustom(%q): %v", ok, err)
		}
	}
}

// TestHealthyCorpusSamples runs the recognisers over the classify corpus's healthy
// logs (runs that did not crash: warnings, NCCL chatter, bars, overflow notes) and
// checks every sample against the line it came from: a sample may come only from a
// line of a format the recognisers read, and each file yields exactly the reviewed
// count of each metric (testdata/healthy_samples.golden), so a new spurious sample fails.
func TestHealthyCorpusSamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "classify", "healthy", "*.log"))
	if err != nil || len(files) == 0 {
		t.Skip("the classify corpus is not in this tree")
	}
	want := map[string]string{}
	b, err := os.ReadFile(filepath.Join("testdata", "healthy_samples.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f, counts, _ := strings.Cut(l, " ")
		want[f] = counts
	}
	r := NewRecognizer(nil)
	var got []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, line := range strings.Split(string(data), "\n") {
			for _, s := range r.Recognize(nil, []byte(line), -1, 1, time.Time{}) {
				count[s.Name]++
				if !lineOfKnownFormat(line) {
					t.Errorf("%s: %s=%v from a line of no known format: %q", filepath.Base(f), s.Name, s.Value, line)
				}
			}
		}
		if len(count) == 0 {
			continue
		}
		var parts []string
		for k, v := range count {
			parts = append(parts, k+"="+strconv.Itoa(v))
		}
		sort.Strings(parts)
		line := filepath.Base(f) + " " + strings.Join(parts, ",")
		got = append(got, line)
		if want[filepath.Base(f)] != strings.Join(parts, ",") {
			t.Errorf("%s: got %s, want %q", filepath.Base(f), strings.Join(parts, ","), want[filepath.Base(f)])
		}
		delete(want, filepath.Base(f))
	}
	for f, c := range want {
		t.Errorf("%s: got no samples, want %s", f, c)
	}
	if t.Failed() {
		t.Logf("got:\n%s", strings.Join(got, "\n"))
	}
}

// lineOfKnownFormat tells, independently of the parsers, whether a line is one the
// recognisers are meant to read.
func lineOfKnownFormat(l string) bool {
	for _, mark := range []string{"{'loss': ", `{"loss": `, "it/s", "s/it", "OVERFLOW! Rank", " iteration ", "step=", "loss=", "SamplesPerSec=", "samples/sec: "} {
		if strings.Contains(l, mark) {
			return true
		}
	}
	return false
}

// TestRecognizeDoesNotAllocate: lines with no metric, and metric lines appended to a
// slice with room, cost no allocation (the benchmark measures the time).
func TestRecognizeDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	custom, err := ParseCustom(`tokens=tokens/s: ([0-9.]+)`)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRecognizer([]Custom{custom})
	dst := make([]Sample, 0, 16)
	for _, l := range []string{
		"node1:12345:12399 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/CUDA/IPC/read",
		"/usr/lib/python3/site-packages/torch/utils/checkpoint.py:464: UserWarning: the use_reentrant parameter should be passed explicitly; loss may differ",
		"{'loss': 1.5214, 'grad_norm': tensor(0.87, device='cuda:0'), 'learning_rate': 1.4e-06, 'epoch': 0.01}",
		"Epoch 1:  39%|█████████▍              | 4846/12331 [05:59<09:15, 13.47it/s, loss=0.0136, v_num=1]",
		" iteration      122/  250000 | consumed samples:       124928 | elapsed time per iteration (ms): 86545.2 | learning rate: 9.150E-06 | global batch size:  1024 | lm loss: 2.504220E+00 | loss scale: 1.0 | grad norm: 0.231 |",
	} {
		line := []byte(l)
		if n := testing.AllocsPerRun(100, func() { dst = r.Recognize(dst[:0], line, 3, 1, time.Time{}) }); n != 0 {
			t.Errorf("%q: %v allocations per line, want 0", l, n)
		}
	}
	// A --metric match costs the regexp's one slice of match indices.
	line := []byte("step 12 tokens/s: 51234.5")
	if n := testing.AllocsPerRun(100, func() { dst = r.Recognize(dst[:0], line, 3, 1, time.Time{}) }); n > 1 {
		t.Errorf("a --metric line: %v allocations, want at most 1", n)
	}
}
