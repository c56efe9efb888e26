package checkpoints

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// maxSafetensorsHeader is the reference reader's limit on the JSON header length.
const maxSafetensorsHeader = 100_000_000

// verifySafetensors checks a safetensors file's structure without reading tensor data:
// header length, JSON, dtypes, contiguous offsets, tensor sizes, and that header plus
// data end exactly at EOF. A hole in the file (a preallocated, never-finished write) is
// reported too.
func verifySafetensors(f *os.File, size int64) error {
	if size < 8 {
		return fmt.Errorf("safetensors: file is %d bytes, shorter than the 8-byte header length", size)
	}
	var nb [8]byte
	if _, err := f.ReadAt(nb[:], 0); err != nil {
		return fmt.Errorf("safetensors: read header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(nb[:])
	if n > maxSafetensorsHeader {
		return fmt.Errorf("safetensors: header length %d exceeds the limit of %d", n, maxSafetensorsHeader)
	}
	if 8+int64(n) > size {
		return fmt.Errorf("safetensors: header length %d runs past end of file (size %d): truncated", n, size)
	}
	hdr := make([]byte, n)
	if _, err := f.ReadAt(hdr, 8); err != nil {
		return fmt.Errorf("safetensors: read header: %w", err)
	}
	dataEnd, err := checkSafetensorsHeader(hdr)
	if err != nil {
		return err
	}
	if want := 8 + int64(n) + dataEnd; want != size {
		if want > size {
			return fmt.Errorf("safetensors: tensors end at byte %d but the file has %d: truncated", want, size)
		}
		return fmt.Errorf("safetensors: %d trailing bytes after the last tensor", size-want)
	}
	if hole, ok := firstHole(f, size); ok && hole < size {
		return fmt.Errorf("safetensors: hole at byte %d of %d: preallocated and never finished", hole, size)
	}
	return nil
}

type stEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// checkSafetensorsHeader validates the JSON header and returns the length of the data
// buffer it describes.
func checkSafetensorsHeader(hdr []byte) (int64, error) {
	if !utf8.Valid(hdr) {
		return 0, errors.New("safetensors: header is not valid UTF-8")
	}
	if t := bytes.TrimLeft(hdr, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return 0, errors.New("safetensors: header is not a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return 0, fmt.Errorf("safetensors: header JSON: %w", err)
	}
	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			var md map[string]string
			if err := json.Unmarshal(msg, &md); err != nil {
				return 0, fmt.Errorf("safetensors: __metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var e stEntry
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return 0, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[1] < e.DataOffsets[0] {
			return 0, fmt.Errorf("safetensors: tensor %q: bad data_offsets %v", name, e.DataOffsets)
		}
		want, ok := tensorBytes(e.DType, e.Shape)
		if !ok {
			return 0, fmt.Errorf("safetensors: tensor %q: unknown dtype %q or bad shape %v", name, e.DType, e.Shape)
		}
		if got := e.DataOffsets[1] - e.DataOffsets[0]; got != uint64(want) {
			return 0, fmt.Errorf("safetensors: tensor %q: %d bytes in data_offsets, dtype %s shape %v needs %d", name, got, e.DType, e.Shape, want)
		}
		spans = append(spans, span{name, e.DataOffsets[0], e.DataOffsets[1]})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var at uint64
	for _, s := range spans {
		if s.begin != at {
			return 0, fmt.Errorf("safetensors: tensor %q starts at %d, expected %d: offsets not contiguous", s.name, s.begin, at)
		}
		at = s.end
	}
	if at > 1<<62 {
		return 0, fmt.Errorf("safetensors: data length %d overflows", at)
	}
	return int64(at), nil
}

// zfsMagic is ZFS's statfs type. With compression on, ZFS stores runs of zeros as
// holes, so a hole there says nothing about an unfinished write.
const zfsMagic = 0x2fc12fc1

// firstHole returns where the hole that runs to the end of f begins (the unwritten
// tail of a preallocated file), or size when there is none. ok is false where the
// filesystem cannot tell, or turns zeros into holes by itself. A hole in the middle
// is not reported: an all-zero tensor on a filesystem that punches holes looks like
// one.
func firstHole(f *os.File, size int64) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil || uint64(st.Type) == zfsMagic {
		return 0, false
	}
	fd := int(f.Fd())
	off := int64(0)
	for off < size {
		hole, err := unix.Seek(fd, off, unix.SEEK_HOLE)
		if err != nil {
			return 0, false
		}
		if hole >= size {
			break
		}
		next, err := unix.Seek(fd, hole, unix.SEEK_DATA)
		if err == unix.ENXIO { // no data after this hole: it is the tail
			_, _ = f.Seek(0, io.SeekStart)
			return hole, true
		}
		if err != nil {
			return 0, false
		}
		off = next
	}
	_, _ = f.Seek(0, io.SeekStart)
	return size, true
}
