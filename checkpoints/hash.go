package checkpoints

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// hashBlock is the read size and pipelineDepth how many blocks are in flight between
// the reader and the hasher: one worker's buffer is hashBlock*pipelineDepth (2 MiB).
// Blocks small enough to stay in the CPU's L2 cache let the hash read what the copy
// out of the page cache just wrote; with 2 MiB blocks (the old 8 MiB buffer) both
// went to DRAM and hashing ran at a third of the speed (bench/checkpoints.sh,
// BenchmarkHashFile/block-*).
const (
	hashBlock     = 512 << 10
	pipelineDepth = 4
	hashBufSize   = hashBlock * pipelineDepth
)

// racyWindow is git's racily-clean rule: a stored hash is trusted only for a file
// last changed this long before it was hashed, because a write within the same
// timestamp granularity would leave the stat key unchanged.
const racyWindow = 3 * time.Second

// HashOptions tunes Hash and the manifest check of Scan.
type HashOptions struct {
	// Full reads every file again even when its stat key is unchanged, to find bit rot.
	Full bool
	// IgnoreDevice leaves the device number out of the stat key: on NFS it can change
	// across remounts.
	IgnoreDevice bool
	// DropCache advises the kernel to drop the pages of each file that was not in the
	// page cache before it was hashed, so that hashing hundreds of GB does not evict
	// the job's own page cache, while a checkpoint just written or about to be loaded
	// keeps its pages.
	DropCache bool
	// Workers bounds how many files are hashed at once; zero means min(4, GOMAXPROCS).
	Workers int
	// racy overrides racyWindow, so tests need not wait for files to age.
	racy time.Duration
}

func (o HashOptions) racyWindow() time.Duration {
	if o.racy > 0 {
		return o.racy
	}
	return racyWindow
}

func (o HashOptions) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return min(4, runtime.GOMAXPROCS(0))
}

// HashResult is what hashing one checkpoint did.
type HashResult struct {
	Checkpoint string `json:"checkpoint"`
	Files      int    `json:"files"`
	// Read counts files read and hashed; Reused counts files whose stat key was
	// unchanged, so their stored hash was kept without reading them.
	Read      int   `json:"read"`
	Reused    int   `json:"reused"`
	BytesRead int64 `json:"bytes_read"`
	// Mismatch names files whose content no longer matches the manifest (bit rot, a
	// partial rewrite) or that disappeared; the old manifest is then kept as evidence.
	Mismatch []string `json:"mismatch,omitempty"`
}

// HashFile returns the xxh64 of the file at path as xxh64sum prints it, reading it in
// large sequential blocks.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("checkpoints: hash %s: %w", path, err)
	}
	defer f.Close()
	sum, n, err := hashReader(context.Background(), f, make([]byte, hashBufSize))
	if err != nil {
		return "", n, fmt.Errorf("checkpoints: hash %s: %w", path, err)
	}
	return sum, n, nil
}

// hashReader hashes f from its current offset to EOF through buf, whose size sets
// the read size, stopping early when ctx is cancelled.
func hashReader(ctx context.Context, f *os.File, buf []byte) (string, int64, error) {
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	block := len(buf) / pipelineDepth
	// A file that fits in one block (most files of a small checkpoint) is one read and
	// one Sum64: no goroutine, no channels.
	n, err := io.ReadFull(f, buf[:block])
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Sprintf("%016x", xxhash.Sum64(buf[:n])), int64(n), nil
	}
	if err != nil {
		return "", int64(n), err
	}
	d := xxhash.New()
	_, _ = d.Write(buf[:n])
	pre := int64(n)
	// Reading (a copy out of the page cache) and hashing overlap: one goroutine reads
	// the next block while this one hashes the last, so hashing costs little more
	// than reading. buf is split into pipelineDepth blocks.
	free := make(chan []byte, pipelineDepth)
	for i := range pipelineDepth {
		// The full slice expression caps each block, so b[:cap(b)] below never
		// reaches into the next block.
		free <- buf[i*block : (i+1)*block : (i+1)*block]
	}
	full := make(chan []byte, pipelineDepth)
	var rerr error
	go func() {
		defer close(full)
		for b := range free {
			n, err := io.ReadFull(f, b)
			if n > 0 {
				full <- b[:n]
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if err != nil {
				rerr = err
				return
			}
		}
	}()
	total := pre
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(free) // the reader ends once the blocks left in free are used
		}
	}
	for b := range full {
		if ctx.Err() != nil {
			stop() // once cancelled, always cancelled: nothing is sent to free again
			continue
		}
		_, _ = d.Write(b)
		total += int64(len(b))
		free <- b[:cap(b)] // never blocks: free holds every block
	}
	stop()
	if err := ctx.Err(); err != nil {
		return "", total, err
	}
	// full is closed only after the reader's last write to rerr.
	if rerr != nil {
		return "", total, rerr
	}
	return fmt.Sprintf("%016x", d.Sum64()), total, nil
}

// hashOne reads one file, with fstat before and after: a file that changed while
// being read is reported, not hashed. With drop, a file that was not in the page cache
// before is evicted again after (see cached).
func hashOne(ctx context.Context, fi fileInfo, buf []byte, drop bool) (string, int64, error) {
	// A raw descriptor: an *os.File costs five more calls per open (fcntl to set and
	// reset O_NONBLOCK, the epoll registration a regular file refuses), a quarter
	// of the syscalls of a pass over many small checkpoints. O_NOFOLLOW: a file
	// swapped for a symlink since the scan is not followed out.
	fd, err := openRead(fi.path)
	if err != nil {
		return "", 0, err
	}
	closed := false
	defer func() {
		if !closed {
			unix.Close(fd)
		}
	}()
	var before, after unix.Stat_t
	if err := fstat(fd, fi.path, &before); err != nil {
		return "", 0, err
	}
	var sum string
	var n int64
	size := before.Size
	evict := false
	if size < int64(len(buf)/pipelineDepth) {
		// One read of exactly its size, no fadvise: the fstat after proves there was
		// nothing more (a write would have changed size, mtime or ctime).
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		m, err := preadFull(fd, buf[:size])
		if err != nil {
			return "", int64(m), &os.PathError{Op: "read", Path: fi.path, Err: err}
		}
		sum, n = fmt.Sprintf("%016x", xxhash.Sum64(buf[:m])), int64(m)
	} else {
		f := os.NewFile(uintptr(fd), fi.path)
		closed = true // f owns fd now
		defer f.Close()
		evict = drop && !cached(f, size)
		if sum, n, err = hashReader(ctx, f, buf); err != nil {
			return "", n, err
		}
	}
	if err := fstat(fd, fi.path, &after); err != nil {
		return "", n, err
	}
	if rawKey(&before) != rawKey(&after) || n != size || rawKey(&before) != fileKey(fi) {
		return "", n, errors.New("changed while being read")
	}
	if evict {
		_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
	}
	return sum, n, nil
}

func openRead(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

func fstat(fd int, path string, st *unix.Stat_t) error {
	for {
		err := unix.Fstat(fd, st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "fstat", Path: path, Err: err}
		}
		return nil
	}
}

// preadFull reads len(b) bytes from offset 0; a short file is io.ErrUnexpectedEOF.
func preadFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Pread(fd, b[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrUnexpectedEOF
		}
		n += m
	}
	return n, nil
}

func rawKey(st *unix.Stat_t) key {
	return key{size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), ino: st.Ino, dev: uint64(st.Dev)}
}

// bufPool holds the workers' read buffers for one pass over many checkpoints, so a
// pass allocates at most one buffer per worker instead of one per worker per
// checkpoint. A nil bufPool allocates each time.
type bufPool chan []byte

func newBufPool(workers int) bufPool { return make(bufPool, workers) }

func (p bufPool) get() []byte {
	select {
	case b := <-p:
		return b
	default:
		return make([]byte, hashBufSize)
	}
}

func (p bufPool) put(b []byte) {
	select {
	case p <- b:
	default:
	}
}

// manifestPrefix is what turns a file's path within its checkpoint into its path in
// the manifest, relative to the root.
func manifestPrefix(c *candidate) string {
	if c.isDir {
		return c.Name + "/"
	}
	if d := filepath.ToSlash(filepath.Dir(c.Name)); d != "." {
		return d + "/"
	}
	return ""
}

type key struct {
	size         int64
	mtime, ctime int64
	ino, dev     uint64
}

func statKey(fi os.FileInfo) key {
	k := key{size: fi.Size(), mtime: fi.ModTime().UnixNano(), ctime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.ctime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec).UnixNano()
		k.ino, k.dev = st.Ino, uint64(st.Dev)
	}
	return k
}

// lastChange is the later of the file's mtime and ctime: a chmod or a rename of the
// inode changes only the ctime.
func (f fileInfo) lastChange() time.Time {
	if f.ctime.After(f.mtime) {
		return f.ctime
	}
	return f.mtime
}

func fileKey(f fileInfo) key {
	return key{size: f.size, mtime: f.mtime.UnixNano(), ctime: f.ctime.UnixNano(), ino: f.ino, dev: f.dev}
}

func manifestKey(m ManifestFile) key {
	return key{size: m.Size, mtime: m.MtimeNS, ctime: m.CtimeNS, ino: m.Inode, dev: m.Device}
}

func sameKey(a, b key, ignoreDev bool) bool {
	if ignoreDev {
		a.dev, b.dev = 0, 0
	}
	return a == b
}

// hashCandidate brings one checkpoint's hashes up to date against its old manifest
// (nil when none): files whose stat key is unchanged, not racily clean and from this
// boot keep their stored hash; the others are read in parallel. It returns the new
// manifest and what it did.
func hashCandidate(ctx context.Context, c *candidate, root string, old *Manifest, boot string, opt HashOptions, bufs bufPool) (*Manifest, HashResult, error) {
	res := HashResult{Checkpoint: c.Name, Files: len(c.files)}
	prefix := manifestPrefix(c)
	oldBy := map[string]ManifestFile{}
	if old != nil {
		for _, f := range old.Files {
			oldBy[f.Path] = f
		}
	}
	now := time.Now()
	m := &Manifest{Version: manifestVersion, Root: root, Checkpoint: c.Name, BootID: boot, HashedAt: now}
	m.Files = make([]ManifestFile, len(c.files))
	var todo []int
	seen := map[string]bool{}
	for i, f := range c.files {
		p := prefix + f.rel
		seen[p] = true
		m.Files[i] = ManifestFile{Path: p, Size: f.size, MtimeNS: f.mtime.UnixNano(), CtimeNS: f.ctime.UnixNano(), Inode: f.ino, Device: f.dev}
		o, ok := oldBy[p]
		if ok && !opt.Full && old.BootID == boot && sameKey(manifestKey(o), fileKey(f), opt.IgnoreDevice) && f.lastChange().Before(old.HashedAt.Add(-opt.racyWindow())) {
			m.Files[i].XXH64 = o.XXH64
			res.Reused++
			continue
		}
		todo = append(todo, i)
	}
	if old != nil {
		for p := range oldBy {
			if !seen[p] {
				res.Mismatch = append(res.Mismatch, p+": disappeared since it was hashed")
			}
		}
	}
	errs := make([]error, len(c.files))
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	// Files of a few blocks in all are hashed here, one after the other: parallel
	// workers would cost more in goroutine hand-offs and thread wake-ups than the
	// reads themselves (most of a pass over 1000 small checkpoints, in the profile).
	var todoBytes int64
	for _, i := range todo {
		todoBytes += c.files[i].size
	}
	workers, feedList := min(opt.workers(), len(todo)), todo
	if todoBytes <= hashBufSize {
		workers = 0
		buf := bufs.get()
		for _, i := range todo {
			sum, n, err := hashOne(ctx, c.files[i], buf, opt.DropCache)
			res.BytesRead += n
			res.Read++
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", c.files[i].rel, err)
				continue
			}
			m.Files[i].XXH64 = sum
		}
		bufs.put(buf)
		feedList = nil
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := bufs.get()
			defer bufs.put(buf)
			for i := range next {
				sum, n, err := hashOne(ctx, c.files[i], buf, opt.DropCache)
				mu.Lock()
				res.BytesRead += n
				res.Read++
				mu.Unlock()
				if err != nil {
					errs[i] = fmt.Errorf("%s: %w", c.files[i].rel, err)
					continue
				}
				m.Files[i].XXH64 = sum
			}
		}()
	}
feed:
	for _, i := range feedList {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, res, fmt.Errorf("checkpoints: hash %s: %w", c.Name, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, res, fmt.Errorf("checkpoints: hash %s: %w", c.Name, err)
	}
	for _, i := range todo {
		if o, ok := oldBy[m.Files[i].Path]; ok && o.XXH64 != m.Files[i].XXH64 {
			how := "rewritten since it was hashed"
			if sameKey(manifestKey(o), fileKey(c.files[i]), opt.IgnoreDevice) {
				how = "content changed with its stat unchanged (bit rot)"
			}
			res.Mismatch = append(res.Mismatch, fmt.Sprintf("%s: xxh64 %s, manifest has %s: %s", c.files[i].rel, m.Files[i].XXH64, o.XXH64, how))
		}
	}
	return m, res, nil
}
