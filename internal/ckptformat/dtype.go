// Package ckptformat holds the facts of the checkpoint file formats that both the
// checkpoint verifier (package checkpoints) and the fixture writers (internal/ckptwrite,
// used by the chaos trainer and tests) rely on: the zip records a torch.save archive
// ends with, the pickle opcodes, the safetensors dtypes. One home, so a reader and a
// writer cannot drift apart.
package ckptformat

// dtypeBits is the size in bits of one element of each safetensors dtype. A dtype
// missing here is unknown, and a header naming it is rejected.
var dtypeBits = map[string]int64{
	"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
	"U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
	"I16": 16, "U16": 16, "F16": 16, "BF16": 16,
	"I32": 32, "U32": 32, "F32": 32,
	"C64": 64, "F64": 64, "I64": 64, "U64": 64,
}

// TensorBytes is the byte length of a tensor of dtype and shape, or false when the
// dtype is unknown, a dimension is negative, the product overflows, or the bit count
// is not a whole number of bytes.
func TensorBytes(dtype string, shape []int64) (int64, bool) {
	bits, ok := dtypeBits[dtype]
	if !ok {
		return 0, false
	}
	const limit = int64(1) << 62
	n := bits
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > limit/d {
			return 0, false
		}
		n *= d
	}
	if n%8 != 0 {
		return 0, false
	}
	return n / 8, true
}
