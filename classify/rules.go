package classify

import (
	"fmt"
	"sync"
)

// tier orders evidence: a root cause beats a consequence, which beats a hint.
type tier int

const (
	// hint: supports a class only when nothing stronger is there (a shell's
	// "Killed", a torchrun summary naming SIGSEGV or SIGABRT).
	hint tier = iota + 1
	// consequence: what other ranks or layers print after the real failure (NCCL
	// timeouts, "previous error" cascades).
	consequence
	// root: names a cause by itself.
	root
)

// shape is a check on the normalised line beyond containing a literal; the slow path
// applies it, so it costs nothing on lines the automaton passes over.
type shape uint8

const (
	anywhere shape = iota
	// shapeExcType: the literal ends the dotted type name at the start of the line, the
	// type of a Python exception ("torch.OutOfMemoryError: ..."; "_ArrayMemoryError").
	shapeExcType
	// shapeShellJob: a strsignal text as a shell reports a job, at the line's start or
	// after a pid ("/bin/sh: line 1:  4321 Killed   python train.py").
	shapeShellJob
	// shapeWord: the literal is a whole word.
	shapeWord
	// shapeAfterComma: the literal follows ", " (PyTorch's "NCCL error in: f:1, <text>").
	shapeAfterComma
	// shapeLossValue: a metric whose name holds "loss" has the value nan or inf.
	shapeLossValue
	// shapeFaultTimeout: faulthandler's "Timeout (H:MM:SS)!".
	shapeFaultTimeout
	// shapeNCCLReturn: NCCLCHECK's trace of a failed call, "<file>:<line> -> <code>"
	// ending its message, not a channel's "0[0] -> 1[1]".
	shapeNCCLReturn
)

// mark is what a line means for the structure around it, whatever its class.
type mark uint8

const (
	markNone mark = iota
	markTraceback
	markChain
	markIgnored
	markException
	markTerminate
	markWhat
	markFatal
	markFatalAbort
	markThread
	markPySpy
	markKill
	// markNCCLSetup: NCCL is setting up a communicator through the store.
	markNCCLSetup
	// markPrecursor: a line printed just before a throw that the program may catch
	// (THCudaCheck's "FAIL" line before its THError); it names a class only for an
	// attempt that then failed with nothing stronger in its log.
	markPrecursor
	// markBarrierWait: a rank still waiting for its peers to join; a hang's end when
	// the log stops there and the attempt failed.
	markBarrierWait
)

// rule is one kind of message. A line matches when it contains one of the literals
// (found by one pass of the compiled automaton), passes the shape, contains needs (if
// set) and none of unless. origin names where the literals come from: an emitter's
// source and version, or the public report a pasted log came from; the corpus test
// measures the classifier with each report's own rules left out.
type rule struct {
	name     string
	class    Class // "" for a rule that only marks structure
	tier     tier
	literals []string
	unless   []string
	shape    shape
	mark     mark
	needs    string
	origin   string
}

const (
	srcBash      = "GNU bash 5.2 jobs.c (\"(core dumped)\" after the signal's text)"
	srcHeuristic = "classify: wordings of training loops that stop on NaN (no single emitter)"
	srcVSCode    = "VS Code 1.x src/vs/workbench/contrib/debug/browser/exceptionWidget.ts (\"Exception has occurred: {0}\", the exception's type; debugpy's exceptionInfo)"
	srcStructure = "CPython 3.12 traceback.c/traceback.py and exceptions.rst; py-spy 0.3 dump format"
)

// handRules are the messages that come from no one table.
var handRules = []rule{
	// Structure: these lines start or end a traceback, a C++ terminate, a chain.
	{name: "traceback", origin: srcStructure, mark: markTraceback, literals: []string{"Traceback (most recent call last)"}},
	{name: "traceback-chain", origin: srcStructure, mark: markChain, literals: []string{"The above exception was the direct cause of the following exception", "During handling of the above exception, another exception occurred"}},
	{name: "traceback-ignored", origin: srcStructure, mark: markIgnored, literals: []string{"Exception ignored in", "--- Logging error ---"}},
	{name: "exception-line", origin: srcStructure, mark: markException, literals: []string{"Error:", "Exception:", "Interrupt"}},
	{name: "vscode-exception", origin: srcVSCode, mark: markException, literals: []string{"Exception has occurred: "}},
	{name: "cpp-what", origin: srcLibstdcxx, mark: markWhat, literals: []string{"what():"}},
	{name: "py-spy-thread", class: Hang, tier: consequence, origin: srcStructure, mark: markPySpy, literals: []string{"(idle): \"", "(active): \"", "(active+gil): \"", "(idle+gil): \""}},

	{name: "core-dumped", class: Segfault, tier: hint, origin: srcBash, literals: []string{"(core dumped)", "core dumped", "SIGSEGV"}, unless: []string{"DataLoader", "dataloader"}},
	{name: "nan-wording", class: NaNDivergence, tier: root, origin: srcHeuristic, literals: []string{"Loss is NaN", "loss is NaN", "loss became NaN", "Detected NaN", "nan loss", "non-finite loss", "Loss has diverged", "NaN or Inf found in input tensor"}, unless: []string{"Gradient overflow"}},
	{name: "divisible", class: ConfigError, tier: root, origin: srcHeuristic, literals: []string{"must be divisible by"}},
	{name: "hf-datasets-disk", class: DiskFull, tier: root, origin: srcHF, literals: []string{"Not enough disk space. Needed:"}},
	{name: "nvml-lost", class: CUDAError, tier: root, origin: srcXid, literals: []string{"GPU is lost", "Unable to determine the device handle for GPU"}},
}

// rules are every rule, built once: the hand rules, the emitters' messages and the
// rules generated from the tables.
var rules = sync.OnceValue(func() []rule {
	rs := append(append([]rule(nil), handRules...), emitterRules...)
	return append(rs, tableRules()...)
})

// tableRules turns the emitters' tables (table_*.go) into rules.
func tableRules() []rule {
	var rs []rule
	for _, e := range cudaErrors {
		var lits []string
		if e.text != "" {
			lits = append(lits, "CUDA error: "+e.text, "CUDA driver error: "+e.text, "CUDA Error: "+e.text)
			// Kaldi's CU_SAFE_CALL (src/cudamatrix/cu-common.h): cudaError_t 4 :
			// "unspecified launch failure" returned from 'cudaMemcpy(...)'.
			lits = append(lits, fmt.Sprintf("\"%s\" returned from", e.text))
			if e.legacy > 0 {
				// THError's "cuda runtime error (N) : text at file:line".
				lits = append(lits, fmt.Sprintf("cuda runtime error (%d) : %s", e.legacy, e.text))
			}
		}
		lits = append(lits, e.name)
		if e.driver != "" {
			lits = append(lits, e.driver)
		}
		var unless []string
		if e.class != CudaOOM {
			// "(see previous error)": a later API call reporting the first error again.
			unless = []string{"previous error"}
		}
		rs = append(rs, rule{name: "cuda:" + e.name, class: e.class, tier: root, literals: lits, unless: unless, origin: srcCUDA})
		if e.legacy > 0 && e.text != "" {
			// __THCudaCheck prints "THCudaCheck FAIL file=F line=L error=N : text" and
			// then throws THError's "cuda runtime error (N) : text", which the caller
			// may catch and go on (PyTorch 0.4's THCGeneral.cpp probes); the throw,
			// when it kills the job, is the evidence.
			rs = append(rs, rule{name: "thcudacheck:" + e.name, class: e.class, tier: consequence, mark: markPrecursor, literals: []string{fmt.Sprintf("error=%d : %s", e.legacy, e.text)}, needs: "THCudaCheck FAIL", unless: unless, origin: srcTHCudaCheck})
		}
		if e.text != "" && len(e.text) >= 2 {
			// NCCL's CUDACHECK: "NCCL WARN Cuda failure 'out of memory'" (2.19+: "Cuda
			// failure 2 'out of memory'").
			// Inside NCCL a failed CUDA call is NCCL's failure (its own "unhandled cuda
			// error" follows), but memory it could not get is memory, as anywhere.
			cl, tr := NCCL, consequence
			if e.class == CudaOOM {
				cl, tr = CudaOOM, root
			}
			rs = append(rs, rule{name: "nccl-cudacheck:" + e.name, class: cl, tier: tr, literals: []string{"'" + e.text + "'"}, needs: "Cuda failure", origin: srcNCCLChecks})
		}
	}
	for _, e := range hipErrors {
		rs = append(rs, rule{name: "hip:" + e.name, class: e.class, tier: root, literals: []string{"HIP error: " + e.text, e.name}, unless: []string{"previous error"}, origin: srcHIP})
	}
	for _, s := range libraryStatuses {
		rs = append(rs, rule{name: "status:" + s.name, class: s.class, tier: root, literals: []string{s.name}, origin: srcCublasCudnn})
	}
	for _, n := range ncclResults {
		r := rule{name: "nccl:" + n.name, class: NCCL, tier: consequence, origin: srcNCCL, literals: []string{n.name}}
		if n.generic {
			r.literals, r.shape, r.needs = []string{", " + n.text}, shapeAfterComma, "NCCL"
		} else {
			r.literals = append(r.literals, n.text)
		}
		rs = append(rs, r)
	}
	for _, e := range errnoTable {
		lits := []string{e.text, fmt.Sprintf("[Errno %d]", e.num)}
		rs = append(rs, rule{name: "errno:" + e.name, class: e.class, tier: e.tier, literals: lits, unless: e.unless, origin: srcErrno})
		if len(e.name) >= 5 {
			rs = append(rs, rule{name: "errno-name:" + e.name, class: e.class, tier: e.tier, literals: []string{e.name}, shape: shapeWord, unless: e.unless, origin: srcErrno})
		}
	}
	for _, w := range winErrors {
		rs = append(rs, rule{name: fmt.Sprintf("winerror:%d", w.num), class: w.class, tier: root, literals: []string{fmt.Sprintf("[WinError %d]", w.num), w.text}, origin: srcWinError})
	}
	for _, n := range ntStatuses {
		// The code as hex (either case), as the unsigned exit status and as the signed
		// one Python and PyCharm print; whole words, so no longer number holds it.
		lits := []string{fmt.Sprintf("0x%08X", n.code), fmt.Sprintf("0x%08x", n.code), fmt.Sprint(n.code), fmt.Sprint(int32(n.code)), n.name}
		rs = append(rs, rule{name: "ntstatus:" + n.name, class: Segfault, tier: hint, literals: lits, shape: shapeWord, origin: srcNTStatus})
	}
	for _, s := range signalTexts {
		if s.shell == Segfault {
			// Open MPI's handler: "[host:pid] Signal: Segmentation fault (11)".
			rs = append(rs, rule{name: "openmpi-signal:" + s.name, class: Segfault, tier: hint, literals: []string{fmt.Sprintf("Signal: %s (%d)", s.text, s.num)}, origin: srcOpenMPI})
		}
	}
	for _, s := range signalTexts {
		rs = append(rs, rule{name: "shell:" + s.name, class: s.shell, tier: hint, literals: []string{s.text}, shape: shapeShellJob, mark: markKillIf(s.num), origin: srcSignals})
		rs = append(rs, rule{name: "dataloader:" + s.name, class: s.dataloader, tier: root, literals: []string{"is killed by signal: " + s.text}, origin: srcTorch})
	}
	for _, l := range glibcL10n {
		cl, tr, sh, mk, unless, ok := l10nClass(l.msgid)
		if !ok {
			continue
		}
		rs = append(rs, rule{name: "l10n:" + l.locale + ":" + l.msgid, class: cl, tier: tr, literals: []string{l.text}, shape: sh, mark: mk, unless: unless, origin: glibcL10nVersion})
	}
	for _, e := range exceptionTypes {
		rs = append(rs, rule{name: "exception:" + e.name, class: e.class, tier: e.tier, literals: []string{e.name}, shape: shapeExcType, origin: e.origin})
	}
	return rs
}

func markKillIf(sig int) mark {
	if sig == 9 {
		return markKill
	}
	return markNone
}

// l10nClass maps a glibc msgid to the class of its errno or signal entry.
func l10nClass(msgid string) (Class, tier, shape, mark, []string, bool) {
	for _, s := range signalTexts {
		if s.text == msgid {
			return s.shell, hint, shapeShellJob, markKillIf(s.num), nil, true
		}
	}
	for _, e := range errnoTable {
		if e.text == msgid {
			// Whole words: a translation can be one common word ("Aplankas").
			return e.class, e.tier, shapeWord, markNone, e.unless, true
		}
	}
	return "", 0, 0, 0, nil, false
}
