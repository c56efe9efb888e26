package checkpoints

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// StateDirName is trainwrap's own directory inside a checkpoint root, holding the
// quarantine and the trash. No framework globs a name starting with a dot.
const StateDirName = ".trainwrap"

// maxDepth bounds how deep discovery looks for checkpoints below the root
// (lightning_logs/version_0/checkpoints/x.ckpt is 4 deep).
const maxDepth = 4

var (
	stagingName    = regexp.MustCompile(`^tmp-checkpoint-(\d+)$`)
	orbaxStaging   = regexp.MustCompile(`^(\d+)\.orbax-checkpoint-tmp-\d+$`)
	iterationValue = regexp.MustCompile(`^(\d+)$`)
)

// pointer is a file that names the checkpoint a framework will load.
type pointer struct {
	path   string // the pointer file (or symlink)
	layout string
	target string // absolute path of the checkpoint it names, "" when broken
	err    string // why it is broken
}

// scanResult is what one pass over a root found.
type scanResult struct {
	root     string
	cands    []*candidate
	pointers []pointer
	notes    []string
	reads    int // files read whole to compare against manifests
	opened   int // files opened to check their structure
	boot     string
	// entries holds every name discovery listed (absolute paths), so a sibling
	// marker such as NeMo's -unfinished is looked up without a stat per candidate.
	entries map[string]bool
}

// Scan discovers every checkpoint under root, in every layout, verifies each, and
// returns them sorted by step ascending (ties by name). It reads only headers, footers
// and small JSON files, plus whole files whose manifest stat key changed when
// opt.ManifestDir is set. A checkpoint with a file open by a live process or changed
// within the quiet period is in-progress and judged no further.
func Scan(ctx context.Context, root string, opt ScanOptions) ([]Checkpoint, error) {
	res, err := scan(ctx, root, opt)
	if err != nil {
		return nil, err
	}
	return res.list(), nil
}

func (r *scanResult) list() []Checkpoint {
	out := make([]Checkpoint, len(r.cands))
	for i, c := range r.cands {
		out[i] = c.Checkpoint
	}
	return out
}

func scan(ctx context.Context, root string, opt ScanOptions) (*scanResult, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: root %s: %w", root, err)
	}
	// Resolve the root itself once, so /proc fd links and symlink checks compare
	// like with like; links below it are never followed.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	st, err := os.Stat(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("checkpoints: root %s does not exist; name the job's output directory: %w", root, err)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoints: root %s: %w", root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("checkpoints: root %s is not a directory", root)
	}
	res := &scanResult{root: abs, boot: bootID(), entries: map[string]bool{}}
	if err := res.discover(ctx, abs, 0); err != nil {
		return nil, err
	}
	var open map[string]int
	if !opt.IgnoreOpenFiles {
		open = openFiles(abs)
	}
	var unfinished = map[string]bool{}
	for _, c := range res.cands {
		if res.entries[c.Path+"-unfinished"] {
			unfinished[c.Path] = true
		}
	}
	now := opt.now()
	for _, c := range res.cands {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("checkpoints: scan %s: %w", root, err)
		}
		if err := c.collect(); err != nil {
			// Unreadable is not proof of incomplete: report it, never act on it.
			c.Status, c.Reason, c.unreadable = StatusIncomplete, "cannot read: "+err.Error(), true
			continue
		}
		res.opened += judge(c, open, unfinished[c.Path], now, opt.quiet(), opt.trusted(c, res.boot))
		for _, f := range c.files {
			if isTempLeftover(filepath.Base(f.rel)) {
				res.notes = append(res.notes, fmt.Sprintf("%s/%s: leftover of an interrupted write, ignored", c.Name, f.rel))
			}
		}
		if c.Layout == LayoutLightning && c.Step < 0 && c.Status == StatusComplete {
			// A copied last.ckpt: its step is in the pickle. It stays pinned.
			c.Step, _ = lightningInfo(c.Path)
		}
	}
	res.resolvePointers()
	res.markBest()
	if opt.ManifestDir != "" && !opt.trustOnly {
		if err := res.compareManifests(ctx, opt); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(res.cands, func(i, j int) bool {
		a, b := res.cands[i], res.cands[j]
		if a.Step != b.Step {
			return a.Step < b.Step
		}
		return a.Name < b.Name
	})
	return res, nil
}

// discover walks dir (depth levels below the root) and records candidates and
// pointers. Symlinks are never followed; a recognised checkpoint is not descended
// into.
func (r *scanResult) discover(ctx context.Context, dir string, depth int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("checkpoints: scan %s: %w", r.root, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if depth == 0 {
			return fmt.Errorf("checkpoints: read %s: %w", dir, err)
		}
		r.notes = append(r.notes, fmt.Sprintf("cannot read %s: %v", r.rel(dir), err))
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		r.entries[p] = true
		if depth == 0 && name == StateDirName {
			continue
		}
		if e.Type()&fs.ModeSymlink != 0 {
			if lightningLast.MatchString(name) {
				r.pointers = append(r.pointers, pointer{path: p, layout: LayoutLightning})
			}
			continue
		}
		switch {
		case name == DeepSpeedPointer && e.Type().IsRegular():
			r.pointers = append(r.pointers, pointer{path: p, layout: LayoutDeepSpeed})
			continue
		case name == MegatronTracker && e.Type().IsRegular():
			r.pointers = append(r.pointers, pointer{path: p, layout: LayoutMegatron})
			continue
		}
		if s, ok := stepIn(stagingName, name); ok && e.IsDir() {
			r.add(p, hfLayout{}, s, "staging directory of an interrupted atomic save")
			continue
		}
		if s, ok := stepIn(orbaxStaging, name); ok {
			r.add(p, genericLayout{}, s, "Orbax staging directory of an interrupted save")
			continue
		}
		matched := false
		for _, l := range layouts {
			if s, ok := l.match(dir, e); ok {
				r.add(p, l, s, "")
				matched = true
				break
			}
		}
		if !matched && e.IsDir() && depth+1 < maxDepth && !strings.HasPrefix(name, ".") {
			if err := r.discover(ctx, p, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *scanResult) rel(p string) string {
	rel, err := filepath.Rel(r.root, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(rel)
}

func (r *scanResult) add(p string, l layout, step int64, staging string) {
	c := &candidate{layout: l}
	c.Path, c.Name, c.Layout, c.Step = p, r.rel(p), l.name(), step
	if staging != "" {
		c.Status, c.Reason = StatusIncomplete, staging
	}
	if step < 0 {
		c.Pinned = true // cannot be ordered by step, so never pruned by count
	}
	r.cands = append(r.cands, c)
}

// collect lists the checkpoint's regular files with their stat keys. Symlinks inside
// are skipped, never followed.
func (c *candidate) collect() error {
	info, err := os.Lstat(c.Path)
	if err != nil {
		return fmt.Errorf("stat: %v", err)
	}
	c.isDir = info.IsDir()
	add := func(p, rel string, fi fs.FileInfo) {
		f := fileInfo{rel: rel, path: p, size: fi.Size(), mtime: fi.ModTime(), ctime: fi.ModTime()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			f.ctime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
			f.ino, f.dev = st.Ino, uint64(st.Dev)
		}
		c.files = append(c.files, f)
		c.noteChange(fi, rel)
		c.Size += f.size
		if f.mtime.After(c.ModTime) {
			c.ModTime = f.mtime
		}
	}
	if !c.isDir {
		add(c.Path, filepath.Base(c.Path), info)
		c.Files = 1
		return nil
	}
	err = filepath.WalkDir(c.Path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if d.IsDir() {
			// A directory changes when a file is created in it: a save that has
			// only just begun has no file to show it yet.
			if fi, err := d.Info(); err == nil {
				rel, _ := filepath.Rel(c.Path, p)
				if rel == "." {
					rel = "the checkpoint directory"
				} else {
					rel = filepath.ToSlash(rel) + "/"
				}
				c.noteChange(fi, rel)
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		rel, _ := filepath.Rel(c.Path, p)
		add(p, filepath.ToSlash(rel), fi)
		return nil
	})
	c.Files = len(c.files)
	if c.ModTime.IsZero() {
		c.ModTime = info.ModTime()
	}
	return err
}

// judge applies the rules in order: live writers and the quiet period first (a
// checkpoint being written is never judged), then markers, then each file, then the
// layout's cross-file rules. It returns how many files it opened.
func judge(c *candidate, open map[string]int, unfinished bool, now time.Time, quiet time.Duration, trusted bool) (opened int) {
	if judgeBusy(c, open, now, quiet) {
		return 0
	}
	if c.Status != "" { // a staging name, decided at discovery
		return 0
	}
	if unfinished {
		c.Status, c.Reason = StatusIncomplete, "NeMo "+filepath.Base(c.Path)+"-unfinished marker present"
		return 0
	}
	if trusted {
		// Hashed as complete before, and no file's stat key has changed since: the
		// verdict stands without opening a file.
		c.Status = StatusComplete
		return 0
	}
	for _, f := range c.files {
		if isTempLeftover(filepath.Base(f.rel)) {
			continue
		}
		why, didOpen := verifyFile(f.path, f.size)
		if didOpen {
			opened++
		}
		if why != "" {
			c.Status, c.Reason = StatusIncomplete, f.rel+": "+why
			return opened
		}
	}
	if why := c.layout.check(c); why != "" {
		c.Status, c.Reason = StatusIncomplete, why
		return opened
	}
	c.Status = StatusComplete
	return opened
}

// judgeBusy marks c in-progress when a live process holds one of its files open or a
// file changed within the quiet period, and reports whether it did.
func judgeBusy(c *candidate, open map[string]int, now time.Time, quiet time.Duration) bool {
	for _, f := range c.files {
		if pid, ok := open[f.path]; ok {
			c.Status, c.Reason = StatusInProgress, fmt.Sprintf("%s is open in process %d", f.rel, pid)
			return true
		}
	}
	if quiet <= 0 {
		return false
	}
	if age := now.Sub(c.changed); age < quiet {
		c.Status, c.Reason = StatusInProgress, fmt.Sprintf("%s changed %s ago (quiet period %s)", c.changedRel, age.Round(time.Millisecond), quiet)
		return true
	}
	return false
}

// noteChange keeps the latest mtime or ctime seen among the checkpoint's entries.
func (c *candidate) noteChange(fi fs.FileInfo, rel string) {
	t := fi.ModTime()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if ct := time.Unix(st.Ctim.Sec, st.Ctim.Nsec); ct.After(t) {
			t = ct
		}
	}
	if t.After(c.changed) {
		c.changed = t
		c.changedRel = rel
	}
}

// resolvePointers reads each pointer file and pins the checkpoint it names.
func (r *scanResult) resolvePointers() {
	byPath := map[string]*candidate{}
	for _, c := range r.cands {
		byPath[c.Path] = c
	}
	for i := range r.pointers {
		p := &r.pointers[i]
		dir := filepath.Dir(p.path)
		switch p.layout {
		case LayoutLightning:
			t, err := os.Readlink(p.path)
			if err != nil {
				p.err = err.Error()
				continue
			}
			if !filepath.IsAbs(t) {
				t = filepath.Join(dir, t)
			}
			p.target = filepath.Clean(t)
		case LayoutDeepSpeed:
			tag, err := readPointer(p.path)
			if err != nil {
				p.err = err.Error()
				continue
			}
			p.target = filepath.Join(dir, tag)
		case LayoutMegatron:
			v, err := readPointer(p.path)
			if err != nil {
				p.err = err.Error()
				continue
			}
			if v == "release" {
				p.target = filepath.Join(dir, "release")
			} else if it, ok := stepIn(iterationValue, v); ok {
				p.target = filepath.Join(dir, megatronDirName(it))
			} else {
				p.err = fmt.Sprintf("%q is not an iteration", v)
				continue
			}
		}
		if c, ok := byPath[p.target]; ok {
			c.Pinned = true
		} else if !dirHas(filepath.Dir(p.target), filepath.Base(p.target)) {
			p.err = fmt.Sprintf("names %s, which does not exist", r.rel(p.target))
		}
	}
}

// markBest marks the checkpoint that the framework's own records call best: HF's
// newest readable trainer_state.json, Lightning's newest complete .ckpt per directory.
func (r *scanResult) markBest() {
	r.markBestHF()
	r.markBestLightning()
}

func (r *scanResult) markBestLightning() {
	newest := map[string]*candidate{} // directory -> newest complete .ckpt
	for _, c := range r.cands {
		if c.Layout != LayoutLightning || c.Status != StatusComplete {
			continue
		}
		d := filepath.Dir(c.Path)
		if n := newest[d]; n == nil || c.Step > n.Step {
			newest[d] = c
		}
	}
	for d, n := range newest {
		_, best := lightningInfo(n.Path)
		if best == "" {
			continue
		}
		for _, c := range r.cands {
			if c.Layout == LayoutLightning && filepath.Dir(c.Path) == d && filepath.Base(c.Path) == filepath.Base(best) {
				c.Best = true
			}
		}
	}
}

func (r *scanResult) markBestHF() {
	var newest *candidate
	var st hfState
	for _, c := range r.cands {
		if c.Layout != LayoutHF || (newest != nil && c.Step <= newest.Step) {
			continue
		}
		var s hfState
		if readJSONFile(filepath.Join(c.Path, "trainer_state.json"), &s) == nil {
			newest, st = c, s
		}
	}
	if newest == nil {
		return
	}
	best := ""
	if st.BestModelCheckpoint != "" {
		best = filepath.Base(filepath.Clean(st.BestModelCheckpoint))
	} else if st.BestGlobalStep != nil {
		best = fmt.Sprintf("checkpoint-%d", *st.BestGlobalStep)
	}
	for _, c := range r.cands {
		if c.Layout == LayoutHF && best != "" && filepath.Base(c.Path) == best && filepath.Dir(c.Path) == filepath.Dir(newest.Path) {
			c.Best = true
		}
	}
}

// pointerNotes describes broken pointers for a report.
func (r *scanResult) pointerNotes() []string {
	var out []string
	for _, p := range r.pointers {
		if p.err != "" {
			out = append(out, fmt.Sprintf("%s: %s", r.rel(p.path), p.err))
		}
	}
	return out
}
