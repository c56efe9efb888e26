package shim

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// writeLogLines writes n numbered 100-byte lines to w, one Write each (as the output pump
// does), and returns everything written.
func writeLogLines(t *testing.T, w io.Writer, from, n int) []byte {
	t.Helper()
	var all bytes.Buffer
	for i := from; i < from+n; i++ {
		line := fmt.Sprintf("%-99s\n", fmt.Sprintf("line %08d", i))
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatalf("write line %d: %v", i, err)
		}
		all.WriteString(line)
	}
	return all.Bytes()
}

// logSet is what a logs directory holds: rotated backups (names sorted), the stale
// temporaries among them, and whether every backup is compressed.
type logSet struct {
	names    []string
	tmp      int
	plain    int
	gz       int
	hasTrain bool
}

func readLogSet(t *testing.T, dir string) logSet {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var s logSet
	for _, e := range ents {
		n := e.Name()
		switch {
		case n == "train.log":
			s.hasTrain = true
			continue
		case strings.HasSuffix(n, ".gz.tmp"):
			s.tmp++
		case strings.HasSuffix(n, ".log.gz"):
			s.gz++
		case strings.HasSuffix(n, ".log"):
			s.plain++
		}
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
	return s
}

// backupContent reads a backup, through gzip for a .gz; a torn .gz fails the test.
func backupContent(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return data
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s is not a valid gzip file: %v", filepath.Base(path), err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s is a torn gzip file: %v", filepath.Base(path), err)
	}
	return out
}

// settled waits until the compressor has compressed every backup and removed every
// temporary, which is the state it reaches after each pass.
func settled(t *testing.T, dir string, wantBackups int) {
	t.Helper()
	testkit.Eventually(t, time.Minute, fmt.Sprintf("%d compressed backups and no plain or temporary ones in %s", wantBackups, dir), func() bool {
		s := readLogSet(t, dir)
		return s.plain == 0 && s.tmp == 0 && s.gz == wantBackups
	})
}

// TestLogFileRotatesCompressesAndCapsExactly rotates train.log for real under a 1 MB
// limit and checks the set: exactly --log-max-backups backups, each a valid .gz, no
// plain or temporary leftovers, and backups plus train.log are exactly the tail of what
// was written. The second case starts on what an interrupted earlier run left.
func TestLogFileRotatesCompressesAndCapsExactly(t *testing.T) {
	cases := []struct {
		name       string
		maxBackups int
		lines      int // 100-byte lines: 10486 fill 1 MB
		leftovers  func(t *testing.T, dir string) []byte
	}{
		{name: "rotations beyond the cap", maxBackups: 3, lines: 70000},
		{name: "fewer rotations than the cap", maxBackups: 10, lines: 25000},
		{
			name: "leftovers of an interrupted run", maxBackups: 2, lines: 100,
			leftovers: func(t *testing.T, dir string) []byte {
				// Four plain backups; the newest also has the torn .gz lumberjack leaves
				// when killed mid-compression, and a stale temporary of ours.
				var all []byte
				for i := 0; i < 4; i++ {
					name := filepath.Join(dir, fmt.Sprintf("train-2026-01-0%dT00-00-00.000.log", i+1))
					var b bytes.Buffer
					all = append(all, writeLogLines(t, &b, i*1000, 1000)...)
					if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					if i == 3 {
						if err := os.WriteFile(name+".gz", []byte("\x1f\x8b\x08\x00torn"), 0o644); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(name+".gz.tmp", []byte("\x1f\x8b\x08"), 0o644); err != nil {
							t.Fatal(err)
						}
					}
				}
				return all
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var written []byte
			if tc.leftovers != nil {
				written = tc.leftovers(t, dir)
			}
			l := newLogFile(filepath.Join(dir, "train.log"), 1, tc.maxBackups)
			written = append(written, writeLogLines(t, l, 1_000_000, tc.lines)...)

			rotated := (tc.lines - 1) / 10485 // lines that fit under 1 MB
			if tc.leftovers != nil {
				rotated = 4
			}
			want := min(rotated, tc.maxBackups)
			settled(t, dir, want)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			s := readLogSet(t, dir)
			if s.gz != want || s.plain != 0 || s.tmp != 0 || len(s.names) != want || !s.hasTrain {
				t.Fatalf("logs dir holds %v (train.log: %v), want exactly %d .gz backups and train.log", s.names, s.hasTrain, want)
			}
			var kept []byte
			for _, n := range s.names {
				kept = append(kept, backupContent(t, filepath.Join(dir, n))...)
			}
			kept = append(kept, backupContent(t, filepath.Join(dir, "train.log"))...)
			if !bytes.HasSuffix(written, kept) || len(kept) == 0 {
				t.Fatalf("the kept logs (%d bytes) are not the tail of what was written (%d bytes)", len(kept), len(written))
			}
		})
	}
}

// logFileChild is the re-exec'd test binary of TestLogFileKilledMidCompression: it
// writes 1.5 MB through a 1 MB log, so one backup is compressed, and at the first
// chunk of that compression says so and stops there until it is killed.
func logFileChild(dir string) {
	stop := make(chan struct{})
	l := newLogFileHooked(filepath.Join(dir, "train.log"), 1, 5, func(tmp string) {
		fmt.Printf("compressing %s\n", filepath.Base(tmp))
		<-stop // never closed: the parent kills us here
	})
	for i := 0; i < 15000; i++ {
		fmt.Fprintf(l, "%-99s\n", fmt.Sprintf("line %08d", i))
	}
	<-stop
}

// TestLogFileKilledMidCompression kills the process with SIGKILL while it is writing a
// .gz (at the event, not after a delay): no .gz may be torn, the uncompressed backup must
// be whole, and the next open must finish the job. lumberjack's Compress writes NAME.gz
// in place, so the same kill left a truncated .gz next to the plain file.
func TestLogFileKilledMidCompression(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "logfile-child", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if !strings.HasPrefix(line, "compressing ") {
			t.Fatalf("child said %q, want it to report the compression it is in", line)
		}
	case <-time.After(time.Minute):
		t.Fatal("timed out after 1m waiting for the child to start compressing")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	s := readLogSet(t, dir)
	if s.gz != 0 || s.plain != 1 || s.tmp != 1 {
		t.Fatalf("after the kill the logs dir holds %v, want the plain backup and its .gz.tmp, no .gz", s.names)
	}
	var plain string
	for _, n := range s.names {
		if strings.HasSuffix(n, ".log") {
			plain = n
		}
	}
	before := backupContent(t, filepath.Join(dir, plain))
	if len(before) != 10485*100 {
		t.Fatalf("the uncompressed backup holds %d bytes, want the whole first megabyte of lines", len(before))
	}

	l := newLogFile(filepath.Join(dir, "train.log"), 1, 5)
	settled(t, dir, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if after := backupContent(t, filepath.Join(dir, plain+".gz")); !bytes.Equal(after, before) {
		t.Fatalf("the backup compressed on the next open holds %d bytes, want the %d of the plain one", len(after), len(before))
	}
}
