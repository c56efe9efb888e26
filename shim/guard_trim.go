package shim

import (
	"bufio"
	"bytes"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimGuard makes a guard, which from here on only sleeps until its supervisor is
// gone, as small as a Go process of this binary can be. The guard is the whole
// trainwrap binary re-executed, so start-up (the runtime, every package's init, the
// CLI parser) touched some 14 MB of its text and read-only data; those pages stay
// mapped, and counted in its RSS, though it never runs that code again. They are clean
// pages of the executable, shared with the supervisor in the page cache: dropping
// this process's mappings of them (MADV_DONTNEED) frees nothing of the file and costs
// only a few page faults for the code of the sweep, if it ever runs. The heap gets a
// low GC target and a limit, and what the collector freed goes back to the kernel.
func trimGuard() {
	debug.SetGCPercent(20)
	debug.SetMemoryLimit(4 << 20)
	debug.FreeOSMemory()
	dropCleanExecutablePages()
}

// dropCleanExecutablePages drops this process's mappings of the executable's
// read-only pages (text, read-only data) where the mapping holds no anonymous,
// copied-on-write page: a writable or relocated (RELRO) mapping keeps its contents,
// since DONTNEED on it would lose what was written.
func dropCleanExecutablePages() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return
	}
	type mapping struct {
		start, end uintptr
		ok         bool
	}
	var maps []mapping
	cur := -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			// A mapping's header: "start-end perms offset dev inode [path]".
			cur = -1
			lo, hi, found := strings.Cut(f[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if !found || err1 != nil || err2 != nil || len(f) < 6 || f[5] != exe {
				continue
			}
			if perms := f[1]; perms != "r-xp" && perms != "r--p" {
				continue
			}
			maps = append(maps, mapping{start: uintptr(start), end: uintptr(end), ok: true})
			cur = len(maps) - 1
			continue
		}
		if cur >= 0 && len(f) >= 2 && (f[0] == "Anonymous:" || f[0] == "Private_Dirty:") && f[1] != "0" {
			maps[cur].ok = false
		}
	}
	for _, m := range maps {
		if m.ok {
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED)
		}
	}
}
