package chaos

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelSigaction is the kernel's struct sigaction as rt_sigaction takes it; all
// zero is SIG_DFL with no flags and an empty mask.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// dieBySignal makes the process die by sig as the wait status shows it. The Go runtime
// catches SIGSEGV and SIGABRT itself and turns them into exit status 2, so the kernel's
// default action is restored underneath it first (rt_sigaction directly: os/signal can
// only hand a signal back to the runtime). It returns only if the signal did not kill.
func dieBySignal(sig syscall.Signal) {
	var act kernelSigaction
	_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	var set unix.Sigset_t
	bit := uint(sig) - 1
	set.Val[bit/64] |= 1 << (bit % 64)
	_ = unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
	_ = unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
}

// segfault dies by a real invalid memory access, not a signal sent by hand: the
// kernel's default SIGSEGV action is restored, then a nil pointer is written through.
func segfault() {
	var act kernelSigaction
	_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(syscall.SIGSEGV), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	writeThrough(nil)
	// Unreachable when the fault killed us; a signal is the fallback.
	dieBySignal(syscall.SIGSEGV)
}

//go:noinline
func writeThrough(p *int64) { *p = 0xdead }
