package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/trainwrap/trainwrap/internal/testkit"
)

// exitCodes reads the class table of the top-level README: the exit codes of the classes
// trainwrap retries, and of those it does not.
func exitCodes(t *testing.T) (retryable, fatal []int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `[a-z_]+` \\| (\\d+) \\| (yes|no) \\|")
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		code, _ := strconv.Atoi(m[1])
		if m[2] == "yes" {
			retryable = append(retryable, code)
		} else {
			fatal = append(fatal, code)
		}
	}
	if len(retryable) < 5 || len(fatal) < 3 {
		t.Fatalf("README class table not found (retryable %v, not retried %v)", retryable, fatal)
	}
	return retryable, fatal
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ints parses "71|72|73" or "2 3 80" or "71-79,85" into sorted codes.
func ints(t *testing.T, s string) []int {
	t.Helper()
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '|' || r == ' ' || r == ',' }) {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			t.Fatalf("not an exit code list: %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				t.Fatalf("not an exit code list: %q", s)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

func union(sets ...[]int) []int {
	var out []int
	for _, s := range sets {
		out = append(out, s...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestKubernetesJob(t *testing.T) {
	retryable, fatal := exitCodes(t)
	var job struct {
		Spec struct {
			PodReplacementPolicy string `yaml:"podReplacementPolicy"`
			PodFailurePolicy     struct {
				Rules []struct {
					Action      string `yaml:"action"`
					OnExitCodes *struct {
						ContainerName string `yaml:"containerName"`
						Operator      string `yaml:"operator"`
						Values        []int  `yaml:"values"`
					} `yaml:"onExitCodes"`
					OnPodConditions []struct {
						Type string `yaml:"type"`
					} `yaml:"onPodConditions"`
				} `yaml:"rules"`
			} `yaml:"podFailurePolicy"`
			Template struct {
				Spec struct {
					RestartPolicy                 string `yaml:"restartPolicy"`
					TerminationGracePeriodSeconds int    `yaml:"terminationGracePeriodSeconds"`
					Containers                    []struct {
						Name    string   `yaml:"name"`
						Command []string `yaml:"command"`
						Args    []string `yaml:"args"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal([]byte(read(t, filepath.Join("kubernetes", "job.yaml"))), &job); err != nil {
		t.Fatalf("kubernetes/job.yaml: %v", err)
	}
	pod := job.Spec.Template.Spec
	if pod.RestartPolicy != "Never" {
		t.Errorf("restartPolicy %q: podFailurePolicy needs Never", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 || pod.Containers[0].Command[0] != "trainwrap" {
		t.Fatalf("want one container running trainwrap as PID 1: %+v", pod.Containers)
	}
	c := pod.Containers[0]
	var failJob, ignore []int
	disruption := false
	for _, r := range job.Spec.PodFailurePolicy.Rules {
		if r.OnExitCodes != nil {
			if r.OnExitCodes.ContainerName != c.Name || r.OnExitCodes.Operator != "In" {
				t.Errorf("rule %s: containerName %q operator %q", r.Action, r.OnExitCodes.ContainerName, r.OnExitCodes.Operator)
			}
			switch r.Action {
			case "FailJob":
				failJob = append(failJob, r.OnExitCodes.Values...)
			case "Ignore":
				ignore = append(ignore, r.OnExitCodes.Values...)
			}
		}
		for _, pc := range r.OnPodConditions {
			disruption = disruption || (pc.Type == "DisruptionTarget" && r.Action == "Ignore")
		}
	}
	if want := union([]int{2}, fatal); !slices.Equal(union(failJob), want) {
		t.Errorf("FailJob on %v, want usage (2) and the classes not retried %v", failJob, want)
	}
	for _, code := range ignore {
		if !slices.Contains(retryable, code) {
			t.Errorf("Ignore on %d, which is not a retryable class", code)
		}
	}
	if !disruption {
		t.Error("no Ignore rule for the DisruptionTarget pod condition")
	}
	if job.Spec.PodReplacementPolicy != "Failed" {
		t.Errorf("podReplacementPolicy %q: two pods must not share the run dir", job.Spec.PodReplacementPolicy)
	}
	stop := flagDuration(t, c.Args, "--stop-timeout")
	if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace <= stop {
		t.Errorf("terminationGracePeriodSeconds %s is not above --stop-timeout %s", grace, stop)
	}
	if !slices.Contains(c.Args, "--") || !slices.Contains(c.Args, "run") {
		t.Errorf("args do not read trainwrap run [flags] -- CMD: %v", c.Args)
	}
}

// flagDuration finds --name=D or --name D in args.
func flagDuration(t *testing.T, args []string, name string) time.Duration {
	t.Helper()
	for i, a := range args {
		v, ok := strings.CutPrefix(a, name+"=")
		if !ok && a == name && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s %q: %v", name, v, err)
			}
			return d
		}
	}
	t.Fatalf("no %s in %v", name, args)
	return 0
}

func TestSlurmRecipes(t *testing.T) {
	retryable, _ := exitCodes(t)
	requeueCase := regexp.MustCompile(`(?m)^\s*((?:\d+\|)+\d+)\)`)
	tests := []struct {
		file   string
		signal string
	}{
		{"train.sbatch", "#SBATCH --signal=B:USR1@90"},
		{"multinode.sbatch", "#SBATCH --signal=USR1@90"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("slurm", tc.file)
			s := read(t, path)
			for _, want := range []string{tc.signal, "#SBATCH --requeue", `scontrol requeue "$SLURM_JOB_ID"`, `exit "$code"`} {
				if !strings.Contains(s, want) {
					t.Errorf("%s lacks %q", path, want)
				}
			}
			m := requeueCase.FindStringSubmatch(s)
			if m == nil {
				t.Fatalf("%s: no case of exit codes to requeue on", path)
			}
			if got := ints(t, m[1]); !slices.Equal(got, retryable) {
				t.Errorf("%s requeues on %v, want the retryable classes %v", path, got, retryable)
			}
			if bash := testkit.WantTool(t, "bash", "bash"); bash != "" {
				if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
					t.Errorf("%s: bash -n: %v\n%s", path, err, out)
				}
			}
		})
	}
	m := regexp.MustCompile("`RequeueExit=([0-9,-]+)`").FindStringSubmatch(read(t, "slurm.md"))
	if m == nil {
		t.Fatal("slurm.md has no `RequeueExit=CODES`")
	}
	if got := ints(t, m[1]); !slices.Equal(got, retryable) {
		t.Errorf("RequeueExit=%s is %v, want the retryable classes %v", m[1], got, retryable)
	}
}

func TestSystemdUnit(t *testing.T) {
	_, fatal := exitCodes(t)
	unit := read(t, filepath.Join("systemd", "trainwrap-train.service"))
	get := func(key string) string {
		m := regexp.MustCompile(`(?m)^` + key + `=(.*)$`).FindStringSubmatch(unit)
		if m == nil {
			t.Fatalf("unit has no %s=", key)
		}
		return strings.TrimSpace(m[1])
	}
	if got, want := ints(t, get("RestartPreventExitStatus")), union([]int{2, 3}, fatal); !slices.Equal(got, want) {
		t.Errorf("RestartPreventExitStatus %v, want usage, preflight and the classes not retried %v", got, want)
	}
	if get("KillMode") != "mixed" || get("Restart") != "on-failure" {
		t.Errorf("KillMode=%s Restart=%s, want mixed and on-failure", get("KillMode"), get("Restart"))
	}
	stopTimeout := regexp.MustCompile(`--stop-timeout (\S+)`).FindStringSubmatch(unit)
	if stopTimeout == nil {
		t.Fatal("ExecStart sets no --stop-timeout")
	}
	stop, err1 := time.ParseDuration(stopTimeout[1])
	limit, err2 := time.ParseDuration(get("TimeoutStopSec"))
	if err1 != nil || err2 != nil || limit <= stop {
		t.Errorf("TimeoutStopSec %s must exceed --stop-timeout %s", get("TimeoutStopSec"), stopTimeout[1])
	}
}

func TestCronRecipe(t *testing.T) {
	_, fatal := exitCodes(t)
	m := regexp.MustCompile(`(?m)^\s*((?:\d+\|)+\d+)\) exit 0`).FindStringSubmatch(read(t, "cron.md"))
	if m == nil {
		t.Fatal("cron.md: no case that stops on the classes not retried")
	}
	if got := ints(t, m[1]); !slices.Equal(got, fatal) {
		t.Errorf("cron recipe stops on %v, want %v", got, fatal)
	}
}
