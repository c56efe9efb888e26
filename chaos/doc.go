// Package chaos proves trainwrap's recovery end to end: a fake trainer that writes
// real HF-layout checkpoints and dies on cue the way real training jobs die (Train),
// an injector that perturbs the job a live supervisor runs (Inject), and a suite that
// runs every failure mode under the real supervisor and checks what it detected and
// recovered (RunSuite).
//
// The trainer prints the messages real jobs print (PyTorch's CUDA OOM traceback,
// ProcessGroupNCCL's watchdog timeout, ENOSPC, DataLoader worker deaths...) and dies
// the way they die (exit 1, SIGKILL, a real SIGSEGV, SIGABRT), so the classifier and the
// supervisor are tested against the real thing, not a description of it.
package chaos
