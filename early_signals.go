package main

// A SIGUSR1 or SIGUSR2 that arrives before the Go runtime has installed its signal
// handlers (SLURM's warning sent the moment a step starts, while the dynamic loader
// and the runtime start up) takes the default action and kills trainwrap. A C
// constructor runs before the runtime (runc's nsenter relies on the same), so it sets
// both to SIG_IGN: a signal in that window is then dropped instead of fatal. The
// runtime installs its own handlers over these at start-up, so children still get the
// default action (Go resets handled signals to SIG_DFL in a forked child) and
// shim.NotifyEarly in main relays both from then on.

/*
#include <signal.h>

__attribute__((constructor)) static void trainwrap_ignore_usr_signals(void) {
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
}
*/
import "C"
