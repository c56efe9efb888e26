package shim

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// unixSignalName is the conventional name ("SIGKILL") of sig, "" when unknown.
func unixSignalName(sig syscall.Signal) string {
	return unix.SignalName(sig)
}
