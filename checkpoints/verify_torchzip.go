package checkpoints

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
)

// legacyTorchMagic starts a torch.save file written before torch 1.6 (a pickled
// integer magic number).
var legacyTorchMagic = []byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// maxCentralDir bounds how much of a central directory is read; a torch archive has a
// few records per tensor storage, far below this.
const maxCentralDir = 256 << 20

// verifyTorchFile checks a torch.save file without reading tensors: a zip archive
// must end exactly in an end-of-central-directory record (following the ZIP64 locator
// when the fields overflow) whose central directory sits just before it and whose
// entries point at local headers; one of them must be data.pkl. A legacy (pre-1.6)
// file can only be checked for its magic number. A writer killed mid-save leaves no end
// record, since torch writes it last.
func verifyTorchFile(f *os.File, size int64) error { return verifyTorch(f, size, true) }

// verifyBin is verifyTorchFile for .bin files, which are torch.save files in HF's
// layouts but may be anything elsewhere: a file that is neither a zip nor a legacy
// torch file is accepted as some other format, never judged.
func verifyBin(f *os.File, size int64) error { return verifyTorch(f, size, false) }

func verifyTorch(f *os.File, size int64, mustBeTorch bool) error {
	var head [4]byte
	if size < 4 {
		return fmt.Errorf("torch: file is %d bytes", size)
	}
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return fmt.Errorf("torch: read: %w", err)
	}
	if !bytes.Equal(head[:], []byte("PK\x03\x04")) {
		magic := make([]byte, len(legacyTorchMagic))
		if _, err := f.ReadAt(magic, 0); err == nil && bytes.Equal(magic, legacyTorchMagic) {
			return nil
		}
		if !mustBeTorch {
			return nil
		}
		return errors.New("torch: neither a zip archive nor a legacy torch.save file")
	}
	return verifyZipEnd(f, size)
}

func verifyZipEnd(f *os.File, size int64) error {
	if size < endLen {
		return fmt.Errorf("zip: file is %d bytes, too short for an end record: truncated", size)
	}
	tail := make([]byte, endLen)
	if _, err := f.ReadAt(tail, size-endLen); err != nil {
		return fmt.Errorf("zip: read end record: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint32(tail) != sigEnd {
		return errors.New("zip: no end-of-central-directory record at end of file: truncated or still being written")
	}
	entries := uint64(le.Uint16(tail[10:]))
	cdSize := uint64(le.Uint32(tail[12:]))
	cdOffset := uint64(le.Uint32(tail[16:]))
	cdEnd := uint64(size - endLen) // where the central directory must end
	if entries == 0xffff || cdSize == maxUint32Mark || cdOffset == maxUint32Mark || size >= endLen+locator64Len+end64Len {
		loc := make([]byte, locator64Len)
		if size >= endLen+locator64Len {
			if _, err := f.ReadAt(loc, size-endLen-locator64Len); err != nil {
				return fmt.Errorf("zip: read ZIP64 locator: %w", err)
			}
		}
		if le.Uint32(loc) == sigLocator64 {
			off := le.Uint64(loc[8:])
			if off+end64Len > uint64(size-endLen-locator64Len) {
				return fmt.Errorf("zip: ZIP64 end record offset %d past end of file", off)
			}
			rec := make([]byte, end64Len)
			if _, err := f.ReadAt(rec, int64(off)); err != nil {
				return fmt.Errorf("zip: read ZIP64 end record: %w", err)
			}
			if le.Uint32(rec) != sigEnd64 {
				return fmt.Errorf("zip: no ZIP64 end record at offset %d", off)
			}
			entries = le.Uint64(rec[32:])
			cdSize = le.Uint64(rec[40:])
			cdOffset = le.Uint64(rec[48:])
			cdEnd = off
		} else if entries == 0xffff || cdSize == maxUint32Mark || cdOffset == maxUint32Mark {
			return errors.New("zip: end record needs ZIP64 but there is no ZIP64 locator")
		}
	}
	if cdOffset+cdSize != cdEnd {
		return fmt.Errorf("zip: central directory at %d+%d does not end where the end records start (%d)", cdOffset, cdSize, cdEnd)
	}
	if cdSize > maxCentralDir {
		return fmt.Errorf("zip: central directory of %d bytes is implausibly large", cdSize)
	}
	cd := make([]byte, cdSize)
	if _, err := f.ReadAt(cd, int64(cdOffset)); err != nil {
		return fmt.Errorf("zip: read central directory: %w", err)
	}
	return walkCentralDir(f, cd, entries, cdOffset)
}

// walkCentralDir checks each central directory entry points at a local header before
// the directory, and that the archive holds a data.pkl record.
func walkCentralDir(f *os.File, cd []byte, entries, cdOffset uint64) error {
	le := binary.LittleEndian
	var pkl bool
	var sig [4]byte
	p := 0
	for i := uint64(0); i < entries; i++ {
		if p+46 > len(cd) || le.Uint32(cd[p:]) != sigCentral {
			return fmt.Errorf("zip: central directory entry %d is malformed", i)
		}
		nameLen := int(le.Uint16(cd[p+28:]))
		extraLen := int(le.Uint16(cd[p+30:]))
		commentLen := int(le.Uint16(cd[p+32:]))
		local := uint64(le.Uint32(cd[p+42:]))
		end := p + 46 + nameLen + extraLen + commentLen
		if end > len(cd) {
			return fmt.Errorf("zip: central directory entry %d runs past the directory", i)
		}
		name := string(cd[p+46 : p+46+nameLen])
		if local == maxUint32Mark {
			local = zip64LocalOffset(cd[p+46+nameLen:p+46+nameLen+extraLen], cd[p:])
		}
		if local >= cdOffset {
			return fmt.Errorf("zip: entry %q: local header offset %d is past the central directory", name, local)
		}
		if _, err := f.ReadAt(sig[:], int64(local)); err != nil || le.Uint32(sig[:]) != sigLocal {
			return fmt.Errorf("zip: entry %q: no local header at offset %d", name, local)
		}
		if name == "data.pkl" || strings.HasSuffix(name, "/data.pkl") {
			pkl = true
		}
		p = end
	}
	if !pkl {
		return errors.New("zip: no data.pkl record: not a torch.save archive")
	}
	return nil
}

// zip64LocalOffset reads the local header offset from a central entry's ZIP64 extra
// field; which 8-byte values are present depends on which 32-bit fields overflowed.
func zip64LocalOffset(extra, entry []byte) uint64 {
	le := binary.LittleEndian
	for len(extra) >= 4 {
		id, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		if 4+n > len(extra) {
			break
		}
		if id == 0x0001 {
			body := extra[4 : 4+n]
			skip := 0
			if le.Uint32(entry[24:]) == maxUint32Mark { // uncompressed size
				skip += 8
			}
			if le.Uint32(entry[20:]) == maxUint32Mark { // compressed size
				skip += 8
			}
			if skip+8 <= len(body) {
				return le.Uint64(body[skip:])
			}
		}
		extra = extra[4+n:]
	}
	return maxUint32Mark
}
