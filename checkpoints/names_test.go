package checkpoints

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/trainwrap/trainwrap/internal/testkit"
)

// trickyNames are file names that a JSON string or a one-line-per-file manifest
// cannot hold as they are.
var trickyNames = []struct{ name, file string }{
	{"not UTF-8", "\xff\xfedata.txt"},
	{"not UTF-8 folder", "sub\xc3/f.bin"},
	{"backslash", `a\b.txt`},
	{"leading backslash", `\start`},
	{"looks escaped", `\n`},
	{"newline", "new\nline.txt"},
	{"carriage return", "cr\rname"},
	{"backslash and newline", "x\\\n\\n\\"},
	{"spaces", "  lead and trail  "},
	{"UTF-8", "日本語 ü.bin"},
}

// A checkpoint holding a file with any name is hashed, its manifest and sidecar give
// the name back byte for byte (the .xxh64 lines hash the real files), and the next
// maintenance, the one after a crash, finds it unchanged instead of quarantining it as
// "disappeared since it was hashed". xxh64sum -c checks the manifest too.
func TestTrickyNamesHashAndSurviveMaintenance(t *testing.T) {
	for _, tc := range trickyNames {
		t.Run(tc.name, func(t *testing.T) {
			root, mdir := t.TempDir(), t.TempDir()
			writeHF(t, root, 40, hfOpts{})
			rel := "checkpoint-40/" + tc.file
			content := []byte("i" + tc.file)
			writeFile(t, filepath.Join(root, rel), content)

			// Start-up maintenance hashes it; the second is the one between attempts.
			for round := 1; round <= 2; round++ {
				rep, err := Maintain(t.Context(), MaintainOptions{Root: root, ManifestDir: mdir, QuietPeriod: -1})
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Quarantined)+len(rep.Pruned)+len(rep.Corrupt) > 0 || rep.Resume == nil || rep.Resume.Name != "checkpoint-40" {
					t.Fatalf("maintenance %d: quarantined %q pruned %q corrupt %q resume %+v; notes %q", round, rep.Quarantined, rep.Pruned, rep.Corrupt, rep.Resume, rep.Notes)
				}
				if len(rep.Hashed) != 1 || len(rep.Hashed[0].Mismatch) > 0 {
					t.Fatalf("maintenance %d: hashed %+v; notes %q", round, rep.Hashed, rep.Notes)
				}
			}

			// The sidecar round-trips the name.
			m := readManifest(mdir, "checkpoint-40")
			if m == nil {
				t.Fatal("no readable manifest for checkpoint-40")
			}
			found := false
			for _, f := range m.Files {
				if f.Path == rel {
					found = true
					if f.XXH64 != hex16(xxhash.Sum64(content)) || f.Size != int64(len(content)) {
						t.Errorf("sidecar entry %+v, want xxh64 %s size %d", f, hex16(xxhash.Sum64(content)), len(content))
					}
				}
			}
			if !found {
				t.Fatalf("sidecar lost %q: %q", rel, paths(m.Files))
			}

			// Every .xxh64 line names a real file and hashes it.
			sums, _ := ManifestPaths(mdir, "checkpoint-40")
			raw, err := os.ReadFile(sums)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := parseSums(raw)
			if err != nil {
				t.Fatalf("parse %s: %v\n%q", sums, err, raw)
			}
			if len(lines) != len(m.Files) {
				t.Fatalf("%d manifest lines for %d files:\n%q", len(lines), len(m.Files), raw)
			}
			for _, l := range lines {
				data, err := os.ReadFile(filepath.Join(root, l.Path))
				if err != nil {
					t.Fatalf("manifest line names %q: %v", l.Path, err)
				}
				if got := hex16(xxhash.Sum64(data)); got != l.XXH64 {
					t.Errorf("%q: manifest %s, content %s", l.Path, l.XXH64, got)
				}
			}

			// Verification trusts the manifest: the checkpoint is complete.
			list, err := Scan(t.Context(), root, ScanOptions{QuietPeriod: -1, IgnoreOpenFiles: true, ManifestDir: mdir, Full: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Status != StatusComplete {
				t.Fatalf("verify against the manifest: %+v", list)
			}

			checkWithXXH64Sum(t, root, sums, lines)
		})
	}
}

// checkWithXXH64Sum runs xxh64sum -c on a manifest from the checkpoint root. xxhsum
// reads escaped lines from 0.8.2 on; an older one (Debian bookworm has 0.8.1) must
// still check every other line, and reports the escaped ones as improperly formatted.
func checkWithXXH64Sum(t *testing.T, root, sums string, lines []sumsLine) {
	t.Helper()
	tool := testkit.WantTool(t, "xxh64sum", "xxhash")
	if tool == "" {
		return
	}
	ver, _ := exec.Command(tool, "--version").CombinedOutput()
	mv := regexp.MustCompile(`(\d+)\.(\d+)\.(\d+)`).FindSubmatch(ver)
	if mv == nil {
		t.Fatalf("xxh64sum --version printed no version: %q", ver)
	}
	major, _ := strconv.Atoi(string(mv[1]))
	minor, _ := strconv.Atoi(string(mv[2]))
	patch, _ := strconv.Atoi(string(mv[3]))
	escapes := major > 0 || minor > 8 || minor == 8 && patch >= 2
	args := []string{"-c", sums}
	if escapes {
		args = []string{"--strict", "-c", sums}
	}
	cmd := exec.Command(tool, args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("xxh64sum %s (from %s): %v\n%q", strings.Join(args, " "), root, err, out)
	}
	raw, _ := os.ReadFile(sums)
	escaped := 0
	for _, l := range bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n")) {
		if l[0] == '\\' {
			escaped++
		}
	}
	if got := bytes.Count(out, []byte(": OK\n")); escapes && got != len(lines) || !escapes && got != len(lines)-escaped {
		t.Fatalf("xxh64sum %s: %d OK lines for %d manifest lines (%d escaped):\n%q", mv[0], got, len(lines), escaped, out)
	}
	if !escapes && escaped > 0 {
		if !bytes.Contains(out, []byte("improperly formatted")) {
			t.Fatalf("xxh64sum %s checked an escaped line it cannot read?\n%q", mv[0], out)
		}
		t.Logf("xxh64sum %s cannot read the %d escaped line(s) (0.8.2 can); it checked the rest", mv[0], escaped)
	}
}

func paths(files []ManifestFile) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

// The sidecar JSON keeps non-UTF-8 names exactly and leaves UTF-8 ones readable as
// they are, without a _b64 field.
func TestManifestJSONKeepsNamesExact(t *testing.T) {
	for _, tc := range []struct {
		root, ckpt, path string
		b64              []string // the _b64 fields the JSON must have
	}{
		{"/data/out", "checkpoint-1", "checkpoint-1/model.safetensors", nil},
		{"/data/out", "checkpoint-1", "checkpoint-1/\xff\xfedata.txt", []string{`"path_b64":"Y2hlY2twb2ludC0xL//+ZGF0YS50eHQ="`}},
		{"/data/\xe9t\xe9", "run\xff/checkpoint-2", "run\xff/checkpoint-2/a", []string{`"root_b64"`, `"checkpoint_b64"`, `"path_b64"`}},
		{"/data/out", "checkpoint-3", "checkpoint-3/new\nline\\", nil},
	} {
		m := Manifest{Version: manifestVersion, Root: tc.root, Checkpoint: tc.ckpt, Files: []ManifestFile{{Path: tc.path, Size: 1, XXH64: "26c7827d889f6da3"}}}
		js, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		compact := new(bytes.Buffer)
		if err := json.Compact(compact, js); err != nil {
			t.Fatal(err)
		}
		for _, want := range tc.b64 {
			if !strings.Contains(compact.String(), want) {
				t.Errorf("%q: JSON lacks %s:\n%s", tc.path, want, compact)
			}
		}
		if len(tc.b64) == 0 && strings.Contains(compact.String(), "_b64") {
			t.Errorf("%q: a UTF-8 name got a _b64 field:\n%s", tc.path, compact)
		}
		var back Manifest
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		if back.Root != tc.root || back.Checkpoint != tc.ckpt || len(back.Files) != 1 || back.Files[0] != m.Files[0] {
			t.Errorf("round trip of %q: got %q %q %+v", tc.path, back.Root, back.Checkpoint, back.Files)
		}
	}
}

// The .xxh64 reader takes what formatSums writes and what xxhsum 0.8.2 and coreutils
// write (every name with a backslash escaped, '*' for binary mode), and refuses a
// damaged line with its number.
func TestParseSums(t *testing.T) {
	var files []ManifestFile
	for i, tc := range trickyNames {
		files = append(files, ManifestFile{Path: "c/" + tc.file, XXH64: hex16(uint64(i) * 0x9e3779b97f4a7c15)})
	}
	got, err := parseSums(formatSums(files))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Fatalf("%d lines back for %d files", len(got), len(files))
	}
	for i, f := range files {
		if got[i].Path != f.Path || got[i].XXH64 != f.XXH64 {
			t.Errorf("line %d: %+v, want %q %s", i+1, got[i], f.Path, f.XXH64)
		}
	}

	for _, tc := range []struct {
		in, path, err string
	}{
		{"26c7827d889f6da3  a b\n", "a b", ""},
		{"26C7827D889F6DA3 *bin\n", "bin", ""},
		{`\26c7827d889f6da3  a\\b` + "\n", `a\b`, ""},
		{`\26c7827d889f6da3  n\nl\r` + "\n", "n\nl\r", ""},
		{`26c7827d889f6da3  \n` + "\n", `\n`, ""},
		{"26c7827d889f6da3  no final newline", "no final newline", ""},
		{`\26c7827d889f6da3  bad\t`, "", `line 1: escaped file name "bad\\t": unknown escape \t`},
		{`\26c7827d889f6da3  trailing\`, "", "line 1: escaped file name \"trailing\\\\\" ends with a backslash"},
		{"26c7827d889f6da3  ok\n\n26c7827d889f6da3  x\n", "", "line 2: empty"},
		{"XXH64 (a) = 26c7827d889f6da3\n", "", "line 1: want 16 hex digits"},
		{"26c7827d889f6dz3  a\n", "", "line 1: want 16 hex digits"},
		{"26c7827d889f6da3  \n", "", "line 1: want 16 hex digits"},
	} {
		got, err := parseSums([]byte(tc.in))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseSums(%q) = %+v, %v; want error %q", tc.in, got, err, tc.err)
			}
		case err != nil || len(got) != 1 || got[0].Path != tc.path || got[0].XXH64 != "26c7827d889f6da3":
			t.Errorf("parseSums(%q) = %+v, %v; want %q", tc.in, got, err, tc.path)
		}
	}
}

// A sidecar that disagrees with its .xxh64 file (a crash between the two writes, or a
// sidecar of an older trainwrap whose JSON turned a name's bytes into U+FFFD) is not
// used: the checkpoint is hashed afresh rather than judged against a wrong list.
func TestReadManifestRefusesASidecarThatDisagrees(t *testing.T) {
	root, mdir := t.TempDir(), t.TempDir()
	writeHF(t, root, 40, hfOpts{})
	writeFile(t, filepath.Join(root, "checkpoint-40", "\xff\xfedata.txt"), []byte("i"))
	if _, _, err := Hash(t.Context(), root, mdir, noQuiet, testHash); err != nil {
		t.Fatal(err)
	}
	_, side := ManifestPaths(mdir, "checkpoint-40")
	js, err := os.ReadFile(side)
	if err != nil {
		t.Fatal(err)
	}
	// What the sidecar held before: the name mangled, no path_b64.
	old := regexp.MustCompile(`,?\s*"path_b64": "[^"]*"`).ReplaceAll(js, nil)
	if bytes.Equal(old, js) {
		t.Fatalf("sidecar has no path_b64 field:\n%s", js)
	}
	if err := os.WriteFile(side, old, 0o644); err != nil {
		t.Fatal(err)
	}
	if m := readManifest(mdir, "checkpoint-40"); m != nil {
		t.Fatalf("a sidecar naming %q was used against a manifest naming the real file", paths(m.Files))
	}
	rep, err := Maintain(t.Context(), MaintainOptions{Root: root, ManifestDir: mdir, QuietPeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Quarantined)+len(rep.Corrupt) > 0 || readManifest(mdir, "checkpoint-40") == nil {
		t.Fatalf("old sidecar not healed: quarantined %q corrupt %q notes %q", rep.Quarantined, rep.Corrupt, rep.Notes)
	}
}
