package shim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainwrap/trainwrap/classify"
)

// TestJobConfigCopy reads integer keys from JSON and YAML configs and writes copies
// with new values: the copy differs from the original in those numbers only, and the
// original is untouched.
func TestJobConfigCopy(t *testing.T) {
	tests := []struct {
		file   string
		read   map[string]int // key → value expected
		bad    map[string]string
		values map[string]int
		want   []string // replacements the copy must show: old line → new line
	}{
		{file: "hf.json",
			read:   map[string]int{"per_device_train_batch_size": 16, "gradient_accumulation_steps": 1, "data.dataloader_num_workers": 8},
			bad:    map[string]string{"model_name_or_path": "not a whole number", "data.shuffle": "not a whole number", "nope": "no such key", "data..x": "empty part"},
			values: map[string]int{"per_device_train_batch_size": 8, "gradient_accumulation_steps": 2, "data.dataloader_num_workers": 4},
			want: []string{
				`  "per_device_train_batch_size": 16,` + "\n" + `  "per_device_train_batch_size": 8,`,
				`  "gradient_accumulation_steps": 1,` + "\n" + `  "gradient_accumulation_steps": 2,`,
				`  "data": {"dataloader_num_workers": 8, "shuffle": true}` + "\n" + `  "data": {"dataloader_num_workers": 4, "shuffle": true}`,
			}},
		{file: "train.yaml",
			read:   map[string]int{"training.per_device_train_batch_size": 16, "training.gradient_accumulation_steps": 1, "data.workers": 8},
			bad:    map[string]string{"model": "not a whole number", "training.learning_rate": "not a whole number", "per_device_train_batch_size": "no such key"},
			values: map[string]int{"training.per_device_train_batch_size": 4, "data.workers": 0},
			want: []string{
				"  per_device_train_batch_size: 16 # fits at seq 512\n  per_device_train_batch_size: 4 # fits at seq 512",
				"  workers: 8\n  workers: 0",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), tt.file)
			orig, err := os.ReadFile(filepath.Join("testdata", "jobconfig", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(src, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := parseConfig(src)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.read {
				if v, err := readConfigInt(f, k); err != nil || v != want {
					t.Errorf("read %s = %d, %v; want %d", k, v, err, want)
				}
			}
			for k, want := range tt.bad {
				_, err := readConfigInt(f, k)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("read %s: error %v, want %q", k, err, want)
				}
				if want == "no such key" && !errors.Is(err, errNoKey) {
					t.Errorf("read %s: %v is not errNoKey", k, err)
				}
			}

			dst := filepath.Join(t.TempDir(), "copy-"+tt.file)
			if err := writeConfigCopy(src, dst, tt.values); err != nil {
				t.Fatal(err)
			}
			if now, _ := os.ReadFile(src); string(now) != string(orig) {
				t.Fatalf("the user's file changed:\n%s", now)
			}
			got, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			want := string(orig)
			for _, r := range tt.want {
				old, repl, _ := strings.Cut(r, "\n")
				if !strings.Contains(want, old) {
					t.Fatalf("fixture lacks %q", old)
				}
				want = strings.Replace(want, old, repl, 1)
			}
			if string(got) != want {
				t.Errorf("copy:\n%s\nwant:\n%s", got, want)
			}
			// The copy reads back with the new values.
			cf, err := parseConfig(dst)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.values {
				if got, err := readConfigInt(cf, k); err != nil || got != v {
					t.Errorf("copy: %s = %d, %v; want %d", k, got, err, v)
				}
			}
		})
	}
}

// TestRecoveryArgv checks how the knobs' values are found in a command and how the
// next attempt's command is made from the user's.
func TestRecoveryArgv(t *testing.T) {
	argIntTests := []struct {
		argv   []string
		flag   string
		v      int
		ok     bool
		errSub string
	}{
		{[]string{"python", "t.py", "--bs", "8"}, "--bs", 8, true, ""},
		{[]string{"python", "t.py", "--bs=8", "--bs", "16"}, "--bs", 16, true, ""},
		{[]string{"python", "t.py", "--bsz", "8"}, "--bs", 0, false, ""},
		{[]string{"python", "t.py", "--bs"}, "--bs", 0, false, ""},
		{[]string{"python", "t.py", "--bs", "auto"}, "--bs", 0, false, `gives it "auto"`},
		{[]string{"python", "t.py", "--bs=-1"}, "--bs", 0, false, `gives it "-1"`},
	}
	for _, tt := range argIntTests {
		v, ok, err := argInt(tt.argv, tt.flag)
		if v != tt.v || ok != tt.ok || (err == nil) != (tt.errSub == "") || (err != nil && !strings.Contains(err.Error(), tt.errSub)) {
			t.Errorf("argInt(%q, %s) = %d, %v, %v; want %d, %v, %q", tt.argv, tt.flag, v, ok, err, tt.v, tt.ok, tt.errSub)
		}
	}

	wd := t.TempDir()
	cfg := filepath.Join(wd, "conf", "run.yaml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("train:\n  batch: 32\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		o    RecoveryOptions
		argv []string
		// the class of each crash, and the command the attempt after it runs (COPY3:
		// the config copy for attempt 3)
		crashes []string
		want    []string
		errSub  string
		notes   string
	}{
		{name: "flags replaced in both forms, accumulation appended when absent",
			o:       RecoveryOptions{BatchArg: "--bs", GradAccumArg: "--ga", WorkersArg: "--nw"},
			argv:    []string{"python", "t.py", "--bs=8", "--nw", "3"},
			crashes: []string{"host_oom", "host_oom", "host_oom"},
			want: []string{"python t.py --bs=8 --nw 1", "python t.py --bs=8 --nw 0",
				"python t.py --bs=4 --nw 0 --ga 2"}},
		{name: "a config named relatively, alone or after flag=, is replaced by the copy",
			o:       RecoveryOptions{BatchKey: "train.batch", JobConfigs: []string{cfg}},
			argv:    []string{"python", "t.py", "--config=conf/run.yaml", "conf/run.yaml", "--other=conf/run.yamlx"},
			crashes: []string{"cuda_oom", "cuda_oom"},
			want: []string{"python t.py --config=conf/run.yaml conf/run.yaml --other=conf/run.yamlx",
				"python t.py --config=COPY3 COPY3 --other=conf/run.yamlx"}},
		{name: "a batch flag the command lacks is a note, not an error",
			o: RecoveryOptions{BatchArg: "--bs"}, argv: []string{"python", "t.py"},
			notes: "the command has no --bs"},
		{name: "a config the command does not name is an error",
			o: RecoveryOptions{BatchKey: "train.batch", JobConfigs: []string{cfg}}, argv: []string{"python", "t.py", "other.yaml"},
			errSub: "the command does not name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(allocConfEnv, "")
			stateDir := filepath.Join(t.TempDir(), "state")
			r, notes, err := newRecovery(tc.o, tc.argv, wd, stateDir)
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("error %v, want %q", err, tc.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(notes, "; "); !strings.Contains(got, tc.notes) || (tc.notes == "" && got != "") {
				t.Errorf("notes %q, want %q", got, tc.notes)
			}
			for i, class := range tc.crashes {
				if _, giveUp, err := r.next(classify.Verdict{Class: classify.Class(class)}, i+2); err != nil || giveUp != "" {
					t.Fatalf("crash %d: %v %s", i+1, err, giveUp)
				}
				got := strings.Join(r.apply(tc.argv), " ")
				want := strings.ReplaceAll(tc.want[i], "COPY3", filepath.Join(stateDir, "job-config", "attempt-3-run.yaml"))
				if got != want {
					t.Errorf("after crash %d: %s\nwant %s", i+1, got, want)
				}
			}
		})
	}
}
