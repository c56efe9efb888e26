package classify

// errno values whose strerror text names a cause of death, as Python prints them in
// an OSError ("[Errno 28] No space left on device: 'ckpt.pt'") and C programs after a
// colon. glibcL10n holds the same texts in every translation.
//
// Sources: Linux include/uapi/asm-generic/errno-base.h and errno.h (the numbers, x86-64
// and arm64); glibc 2.36 sysdeps/gnu/errlist.h (the texts, the msgids of libc.pot).
const srcErrno = "Linux asm-generic/errno-base.h + errno.h; glibc 2.36 strerror texts (errlist.h)"

type errnoEntry struct {
	name  string
	num   int
	text  string
	class Class
	tier  tier
	// unless: lines naming the text that are another class's (a shared library that is
	// missing is an import error, not a missing data file).
	unless []string
}

var errnoTable = []errnoEntry{
	{"EPERM", 1, "Operation not permitted", Permission, root, []string{"stream is capturing"}},
	{"ENOENT", 2, "No such file or directory", FileNotFound, root, []string{"cannot open shared object file", "Permission denied", "No usable temporary directory"}},
	{"EIO", 5, "Input/output error", DiskFull, consequence, nil},
	{"ENOMEM", 12, "Cannot allocate memory", HostOOM, root, nil},
	{"EACCES", 13, "Permission denied", Permission, root, nil},
	{"ENOTDIR", 20, "Not a directory", FileNotFound, root, nil},
	{"EISDIR", 21, "Is a directory", FileNotFound, root, nil},
	{"ENFILE", 23, "Too many open files in system", Dataloader, root, nil},
	{"EMFILE", 24, "Too many open files", Dataloader, root, nil},
	{"ENOSPC", 28, "No space left on device", DiskFull, root, nil},
	{"EROFS", 30, "Read-only file system", Permission, root, nil},
	{"EDQUOT", 122, "Disk quota exceeded", DiskFull, root, nil},
	{"ETIMEDOUT", 110, "Connection timed out", Timeout, root, []string{"NCCL", "Watchdog", "TCPStore", "DistStoreError"}},
}

// signalTexts are glibc's strsignal texts (glibc 2.36 sysdeps/generic/siglist.h) for
// the signals that end a training job, with what each means when a shell or the
// DataLoader reports a process killed by it.
const srcSignals = "glibc 2.36 strsignal texts (siglist.h); Linux signal numbers (x86-64)"

var signalTexts = []struct {
	name string
	num  int
	text string
	// shell is the class when a shell reports a job killed by the signal ("1234
	// Killed   python train.py"); dataloader when PyTorch reports a DataLoader worker
	// killed by it.
	shell, dataloader Class
}{
	{"SIGKILL", 9, "Killed", HostOOM, HostOOM},
	{"SIGSEGV", 11, "Segmentation fault", Segfault, Dataloader},
	{"SIGABRT", 6, "Aborted", Segfault, Dataloader},
	{"SIGBUS", 7, "Bus error", Segfault, Dataloader},
	{"SIGFPE", 8, "Floating point exception", Segfault, Dataloader},
	{"SIGILL", 4, "Illegal instruction", Segfault, Dataloader},
	{"SIGXCPU", 24, "CPU time limit exceeded", Timeout, Dataloader},
	// A scheduler's or a user's stop: the cause is theirs, and unknown here.
	{"SIGTERM", 15, "Terminated", Unknown, Dataloader},
}

// l10nText is one translation of a glibc message (table_glibc_l10n.go).
type l10nText struct {
	msgid, locale, text string
}

// Windows system error codes as Python prints them ("OSError: [WinError 1455] The
// paging file is too small for this operation to complete"): the DataLoader's workers
// on Windows die of 1455 when the page file cannot back their copies of the model.
// Source: Microsoft Win32 System Error Codes (winerror.h, Windows SDK 10.0.22621).
const srcWinError = "Microsoft winerror.h System Error Codes (Windows SDK 10.0.22621)"

var winErrors = []struct {
	num   int
	text  string
	class Class
}{
	{2, "The system cannot find the file specified", FileNotFound},
	{3, "The system cannot find the path specified", FileNotFound},
	{5, "Access is denied", Permission},
	{8, "Not enough memory resources are available to process this command", HostOOM},
	{32, "The process cannot access the file because it is being used by another process", Permission},
	{112, "There is not enough space on the disk", DiskFull},
	{126, "The specified module could not be found", ImportError},
	{127, "The specified procedure could not be found", ImportError},
	{1450, "Insufficient system resources exist to complete the requested service", HostOOM},
	{1455, "The paging file is too small for this operation to complete", HostOOM},
}

// NTSTATUS codes a Windows process dies of, as the exit code its parent reports:
// PyCharm's "Process finished with exit code -1073741819 (0xC0000005)", a shell's
// 3221225477. Each is a native crash, the Windows form of SIGSEGV, SIGBUS, SIGILL or
// SIGABRT. Source: Microsoft ntstatus.h (Windows SDK 10.0.22621) and [MS-ERREF] 2.3.1.
const srcNTStatus = "Microsoft ntstatus.h NTSTATUS values (Windows SDK 10.0.22621; [MS-ERREF] 2.3.1)"

var ntStatuses = []struct {
	name string
	code uint32
}{
	{"STATUS_ACCESS_VIOLATION", 0xC0000005},
	{"STATUS_IN_PAGE_ERROR", 0xC0000006},
	{"STATUS_ILLEGAL_INSTRUCTION", 0xC000001D},
	{"STATUS_STACK_OVERFLOW", 0xC00000FD},
	{"STATUS_HEAP_CORRUPTION", 0xC0000374},
	{"STATUS_STACK_BUFFER_OVERRUN", 0xC0000409},
}
