package shim

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// unixSignalName is the conventional name ("SIGKILL") of sig, "" when unknown.
func unixSignalName(sig syscall.Signal) string {
	return unix.SignalName(sig)
}

// NotifyEarly relays SIGUSR1, SIGUSR2, SIGTERM, SIGINT and SIGHUP to a new channel from
// now on. Call it first thing in main: SLURM may send its USR1 warning, or a scheduler
// its TERM, the moment the step starts. Until then the Go runtime exits on TERM, INT and
// HUP (and before the runtime starts, USR1's default action kills: main's C constructor
// ignores USR1 and USR2 for that stretch). A signal that arrives while flags and config
// load then waits in the channel for the supervisor; pass the channel as
// Options.Signals (or GuardOptions.Signals). A command that supervises nothing hands
// the signals back with ReleaseSignals.
func NotifyEarly() chan os.Signal {
	c := make(chan os.Signal, 32)
	signal.Notify(c, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	return c
}

// ReleaseSignals stops relaying to c and re-raises what c holds, so each takes its
// default action, as if NotifyEarly had never been called: a Ctrl-C during `trainwrap
// history` still ends it.
func ReleaseSignals(c chan os.Signal) {
	if c == nil {
		return
	}
	signal.Stop(c)
	for {
		select {
		case sig := <-c:
			if ss, ok := sig.(syscall.Signal); ok {
				_ = syscall.Kill(os.Getpid(), ss)
			}
		default:
			return
		}
	}
}
