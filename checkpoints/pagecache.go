package checkpoints

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mincoreWindow is how much of a file one mincore call looks at: its vector (one
// byte per page) stays small however large the file.
const mincoreWindow = 256 << 20

// cached reports whether at least half of f's size bytes are in the page cache. It
// maps the file without touching the mapping, so asking reads nothing in. When it
// cannot tell it says true: the caller then leaves the cache alone.
//
// Hashing with HashOptions.DropCache evicts only files that were not cached before:
// a checkpoint the job has just written, or is about to load, keeps its pages.
func cached(f *os.File, size int64) bool {
	if size <= 0 {
		return true
	}
	page := int64(os.Getpagesize())
	vec := make([]byte, mincoreWindow/page)
	var in, total int64
	for off := int64(0); off < size; off += mincoreWindow {
		n := min(size-off, mincoreWindow)
		m, err := unix.Mmap(int(f.Fd()), off, int(n), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return true
		}
		pages := (n + page - 1) / page
		// x/sys/unix has no Mincore wrapper on linux.
		_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(n), uintptr(unsafe.Pointer(&vec[0])))
		_ = unix.Munmap(m)
		if errno != 0 {
			return true
		}
		for _, v := range vec[:pages] {
			in += int64(v & 1)
		}
		total += pages
	}
	return 2*in >= total
}
