package checkpoints

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"strings"
)

// maxLightningPickle bounds how much of a .ckpt's data.pkl is read to find its step
// and best path; the pickle holds tensor references, not tensor data, so it is small.
const maxLightningPickle = 64 << 20

// lightningInfo reads global_step and ModelCheckpoint's best_model_path from a
// Lightning .ckpt without unpickling it: it finds the keys' BINUNICODE strings in
// data.pkl and decodes the value that follows (skipping a memo put). Either result is
// zero when not found: this is a hint used for pinning, never for a verdict.
func lightningInfo(path string) (step int64, best string) {
	step = -1
	f, err := os.Open(path)
	if err != nil {
		return step, ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return step, ""
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return step, ""
	}
	for _, e := range zr.File {
		if e.Name != "data.pkl" && !strings.HasSuffix(e.Name, "/data.pkl") {
			continue
		}
		// OpenRaw skips the CRC check: torch can write entries with CRC 0
		// (set_crc32_options(False)), which archive/zip would reject.
		r, err := e.OpenRaw()
		if err != nil || e.Method != zip.Store {
			return step, ""
		}
		pkl, err := io.ReadAll(io.LimitReader(r, maxLightningPickle))
		if err != nil {
			return step, ""
		}
		if v, ok := pickleValueAfter(pkl, "global_step"); ok {
			if n, ok := v.(int64); ok {
				step = n
			}
		}
		if v, ok := pickleValueAfter(pkl, "best_model_path"); ok {
			if s, ok := v.(string); ok {
				best = s
			}
		}
		return step, best
	}
	return step, ""
}

// pickleValueAfter finds the first BINUNICODE key in pkl and decodes the scalar that
// follows it: a string or a small integer.
func pickleValueAfter(pkl []byte, key string) (any, bool) {
	var needle bytes.Buffer
	needle.WriteByte(opBinUnicode)
	_ = binary.Write(&needle, binary.LittleEndian, uint32(len(key)))
	needle.WriteString(key)
	i := bytes.Index(pkl, needle.Bytes())
	if i < 0 {
		return nil, false
	}
	p := pkl[i+needle.Len():]
	// Skip a memo put of the key.
	switch {
	case len(p) >= 2 && p[0] == 'q': // BINPUT
		p = p[2:]
	case len(p) >= 5 && p[0] == 'r': // LONG_BINPUT
		p = p[5:]
	}
	if len(p) < 2 {
		return nil, false
	}
	switch p[0] {
	case opBinUnicode:
		if len(p) < 5 {
			return nil, false
		}
		n := binary.LittleEndian.Uint32(p[1:])
		if uint64(len(p)) < 5+uint64(n) {
			return nil, false
		}
		return string(p[5 : 5+n]), true
	case 0x8c: // SHORT_BINUNICODE (protocol 4)
		n := int(p[1])
		if len(p) < 2+n {
			return nil, false
		}
		return string(p[2 : 2+n]), true
	case opBinInt1:
		return int64(p[1]), true
	case opBinInt2:
		if len(p) < 3 {
			return nil, false
		}
		return int64(binary.LittleEndian.Uint16(p[1:])), true
	case opBinInt:
		if len(p) < 5 {
			return nil, false
		}
		return int64(int32(binary.LittleEndian.Uint32(p[1:]))), true
	}
	return nil, false
}
