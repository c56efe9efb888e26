package observe

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/internal/testkit"
	"github.com/trainwrap/trainwrap/rundir"
)

// chromium runs headless Chromium with args in a process group of its own and kills
// the whole group afterwards: Chromium leaves zygote and GPU helpers behind otherwise.
func chromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars", "--window-size=1200,1700"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// TestPageInChromium loads the status page in a real browser: the DOM Chromium builds
// must hold the timeline, and the screenshot must be a page with content. It skips
// when Chromium is not installed, and fails under CI=true, where .ci/run installs Debian's
// chromium.
func TestPageInChromium(t *testing.T) {
	bin := testkit.NeedTool(t, "chromium", "chromium")
	dir := fixtureDir(t, "crashed")
	var b bytes.Buffer
	if err := renderPage(&b, rundir.New(dir), false, time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + page

	dom := string(chromium(t, bin, "--dump-dom", url))
	for _, want := range []string{`<svg xmlns="http://www.w3.org/2000/svg" class="timeline"`, `class="crash"`, `id="last-crash"`, "nan_divergence"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM Chromium built lacks %q", want)
		}
	}

	shot := filepath.Join(t.TempDir(), "report.png")
	chromium(t, bin, "--screenshot="+shot, url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if r := img.Bounds(); r.Dx() != 1200 || r.Dy() != 1700 {
		t.Errorf("screenshot is %dx%d, want 1200x1700", r.Dx(), r.Dy())
	}
	// A page that failed to render is one flat colour; ours has a dark header, white
	// cards and coloured plots.
	colours := map[uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 7 {
		for x := r.Min.X; x < r.Max.X; x += 7 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			colours[cr>>12<<8|cg>>12<<4|cb>>12] = true
		}
	}
	if len(colours) < 12 {
		t.Errorf("screenshot has %d distinct colours: the page did not render", len(colours))
	}
	if out := os.Getenv("TRAINWRAP_SCREENSHOT_DIR"); out != "" {
		if data, err := os.ReadFile(shot); err == nil {
			_ = os.WriteFile(filepath.Join(out, "report.png"), data, 0o644)
		}
	}
}
