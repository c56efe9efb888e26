//go:build cgo

package preflight

import "github.com/NVIDIA/go-nvml/pkg/dl"

// nvmlLibrary is the library go-nvml's Init opens.
const nvmlLibrary = "libnvidia-ml.so.1"

// HaveNVML reports whether the dynamic loader finds NVML's library: the dlopen that
// go-nvml's Init starts with, without calling into the library. When it fails, every
// GPU check and sample can only say "no NVML", so trainwrap decides that once instead
// of starting a child process per check (42–58 ms each) to learn it again.
func HaveNVML() bool { return libraryLoads(nvmlLibrary) }

// libraryLoads reports whether name opens with dlopen; it is closed again at once.
func libraryLoads(name string) bool {
	lib := dl.New(name, dl.RTLD_LAZY|dl.RTLD_LOCAL)
	if err := lib.Open(); err != nil {
		return false
	}
	_ = lib.Close()
	return true
}
