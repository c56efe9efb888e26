package classify

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// corpusDir holds real-format log excerpts, one folder per class, and healthy/ for runs
// that look alarming but did not crash; README there describes the layout.
var corpusDir = filepath.Join("..", "testdata", "classify")

// corpusExits reads exits.txt: "<class>/<file> exit=N | signal=NAME | stalled".
func corpusExits(t *testing.T) map[string]Exit {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "exits.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	signals := map[string]syscall.Signal{"SIGKILL": syscall.SIGKILL, "SIGSEGV": syscall.SIGSEGV, "SIGABRT": syscall.SIGABRT, "SIGBUS": syscall.SIGBUS, "SIGTERM": syscall.SIGTERM}
	out := map[string]Exit{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, how, ok := strings.Cut(line, " ")
		e := Exit{OOMKillDelta: -1}
		switch {
		case !ok:
			t.Fatalf("exits.txt line %d: want \"<class>/<file> <how>\", got %q", n, line)
		case how == "stalled":
			e.Stalled, e.Signal, e.KilledBySupervisor = true, syscall.SIGKILL, true
		case strings.HasPrefix(how, "signal="):
			sig, known := signals[strings.TrimPrefix(how, "signal=")]
			if !known {
				t.Fatalf("exits.txt line %d: unknown signal in %q", n, how)
			}
			e.Signal, e.Code = sig, -1
		case strings.HasPrefix(how, "exit="):
			if _, err := fmt.Sscanf(how, "exit=%d", &e.Code); err != nil {
				t.Fatalf("exits.txt line %d: %v", n, err)
			}
		default:
			t.Fatalf("exits.txt line %d: unknown exit %q", n, how)
		}
		if _, err := os.Stat(filepath.Join(corpusDir, name)); err != nil {
			t.Fatalf("exits.txt line %d: %v", n, err)
		}
		out[name] = e
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func classifyFile(t *testing.T, path string) *Classifier {
	t.Helper()
	return classifyFileWithout(t, path, nil)
}

// classifyFileWithout classifies path with the rules off reports left out.
func classifyFileWithout(t *testing.T, path string, off func(*rule) bool) *Classifier {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := newClassifier(off)
	for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		c.ObserveLine(l)
	}
	return c
}

// corpusSources reads SOURCES: excerpt → the public report it was copied from.
func corpusSources(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, "SOURCES"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if name, url, ok := strings.Cut(line, " "); ok {
			out[name] = strings.TrimSpace(url)
		}
	}
	return out
}

// classTally is one row of the per-class table.
type classTally struct{ n, right, loso int }

// TestCorpus classifies every excerpt with its recorded exit status and prints a table
// per class. Two figures must reach 95%: plain accuracy, and leave-one-source-out
// accuracy, where each excerpt is classified with the rules taken from its own report
// (a rule's origin is that report's URL) left out, so that rules fitted to an excerpt
// cannot score it. Every healthy run must be none, from its log alone as well.
func TestCorpus(t *testing.T) {
	exits := corpusExits(t)
	sources := corpusSources(t)
	files, err := filepath.Glob(filepath.Join(corpusDir, "*", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	tally := map[Class]*classTally{}
	total, right, loso, falseCrashes := 0, 0, 0, 0
	for _, path := range files {
		rel := filepath.ToSlash(strings.TrimPrefix(path, corpusDir+string(filepath.Separator)))
		dir := filepath.Dir(rel)
		want := Class(dir)
		if dir == "healthy" {
			want = None
		}
		if Lookup(want).Class != want {
			t.Errorf("%s: folder %q is no class", rel, dir)
			continue
		}
		if tally[want] == nil {
			tally[want] = &classTally{}
		}
		row := tally[want]
		row.n++
		total++
		e, ok := exits[rel]
		if !ok {
			e = Exit{Code: 1, OOMKillDelta: -1}
			if want == None {
				e.Code = 0
			}
		}
		judge := func(c *Classifier) (Verdict, bool) {
			v := c.Verdict(e)
			if want == None {
				// A healthy log must hold no evidence of a crash at all.
				if fl := c.FromLog(); fl.Class != None {
					return fl, false
				}
			}
			return v, v.Class == want
		}
		v, ok := judge(classifyFile(t, path))
		if ok {
			right++
			row.right++
		} else {
			if want == None {
				falseCrashes++
				t.Errorf("healthy %s: says %s: %+v", rel, v.Class, v.Evidence)
			}
			first := ""
			if len(v.Evidence) > 0 {
				first = fmt.Sprintf(" (line %d %s: %q)", v.Evidence[0].Line, v.Evidence[0].Rule, v.Evidence[0].Text)
			}
			t.Logf("misclassified %s: got %s, want %s%s", rel, v.Class, want, first)
		}
		src := sources[rel]
		lv, lok := judge(classifyFileWithout(t, path, func(r *rule) bool { return src != "" && r.origin == src }))
		if lok {
			loso++
			row.loso++
		} else if ok {
			t.Logf("leave-one-source-out: %s needs a rule taken from its own report: got %s (%s)", rel, lv.Class, src)
		}
	}
	if total == 0 {
		t.Fatal("no corpus")
	}
	t.Logf("%-16s %8s %6s %9s %9s", "class", "excerpts", "right", "accuracy", "loso")
	for _, in := range Classes() {
		row := tally[in.Class]
		need := 8
		if in.Class == None {
			need = 10
		}
		if row == nil || row.n < need {
			n := 0
			if row != nil {
				n = row.n
			}
			t.Errorf("%s: %d excerpts, want at least %d", in.Class, n, need)
			continue
		}
		t.Logf("%-16s %8d %6d %8.1f%% %8.1f%%", in.Class, row.n, row.right, 100*float64(row.right)/float64(row.n), 100*float64(row.loso)/float64(row.n))
	}
	ratio, lratio := float64(right)/float64(total), float64(loso)/float64(total)
	t.Logf("%-16s %8d %6d %8.1f%% %8.1f%%", "all", total, right, 100*ratio, 100*lratio)
	t.Logf("false crashes on healthy logs: %d", falseCrashes)
	if ratio < 0.95 {
		t.Errorf("corpus: %.1f%% right, want at least 95%%", 100*ratio)
	}
	if lratio < 0.95 {
		t.Errorf("corpus, leave-one-source-out: %.1f%% right, want at least 95%%", 100*lratio)
	}
}

// TestCorpusSources checks that every excerpt names its public source in SOURCES and
// that SOURCES names no file that is gone.
func TestCorpusSources(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(corpusDir, "SOURCES"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for n, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		name, url, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(url, "https://") {
			t.Errorf("SOURCES line %d: want \"<folder>/<file> https://...\", got %q", n+1, line)
			continue
		}
		if listed[name] {
			t.Errorf("SOURCES line %d: %s listed twice", n+1, name)
		}
		listed[name] = true
		if _, err := os.Stat(filepath.Join(corpusDir, name)); err != nil {
			t.Errorf("SOURCES line %d: %v", n+1, err)
		}
	}
	files, err := filepath.Glob(filepath.Join(corpusDir, "*", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		rel := filepath.ToSlash(strings.TrimPrefix(path, corpusDir+string(filepath.Separator)))
		if !listed[rel] {
			t.Errorf("%s has no source in SOURCES", rel)
		}
	}
}
