package checkpoints

import "github.com/trainwrap/trainwrap/internal/ckptformat"

// The format facts the verifiers read by, from their one home shared with the
// fixture writers.
const (
	sigLocal      = ckptformat.SigLocal
	sigCentral    = ckptformat.SigCentral
	sigEnd        = ckptformat.SigEnd
	sigEnd64      = ckptformat.SigEnd64
	sigLocator64  = ckptformat.SigLocator64
	endLen        = ckptformat.EndLen
	end64Len      = ckptformat.End64Len
	locator64Len  = ckptformat.Locator64Len
	maxUint32Mark = ckptformat.MaxUint32Mark

	opBinInt1    = ckptformat.OpBinInt1
	opBinInt2    = ckptformat.OpBinInt2
	opBinInt     = ckptformat.OpBinInt
	opBinUnicode = ckptformat.OpBinUnicode
)

func tensorBytes(dtype string, shape []int64) (int64, bool) {
	return ckptformat.TensorBytes(dtype, shape)
}
