package ckptwrite

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"

	"github.com/trainwrap/trainwrap/internal/ckptformat"
)

// What the torch.save writer (PyTorchStreamWriter) puts in its zip records.
const (
	torchAlign   = 64
	extraPadID   = 0x4246 // "FB", the padding field PyTorchStreamWriter uses
	zipVersion64 = 45
	dosDate1980  = 0x21 // 1980-01-01, the zip epoch; torch writes no real time either
)

// WriteTorchSave writes obj to w as torch.save (torch >= 1.6) would write a plain
// object: an uncompressed zip whose records <archiveName>/data.pkl (a protocol-2
// pickle), <archiveName>/byteorder and <archiveName>/version ("3\n") start their
// data on 64-byte boundaries, followed by the central directory and the ZIP64 end
// record, ZIP64 locator and end record that torch always writes. obj may nest
// map[string]any, []any, string, float64, int64, int, bool and nil; torch.load
// (weights_only too) returns it unchanged. archiveName is the file's base name without
// its extension, as torch uses, or "archive".
func WriteTorchSave(w io.Writer, archiveName string, obj any) error {
	if archiveName == "" || strings.ContainsAny(archiveName, "/\\") {
		return fmt.Errorf("ckptwrite: write torch save: archive name %q must be a plain non-empty name", archiveName)
	}
	pkl, err := writePickle(obj)
	if err != nil {
		return fmt.Errorf("ckptwrite: write torch save: %w", err)
	}
	zw := &torchZipWriter{w: w}
	for _, r := range []struct {
		name string
		data []byte
	}{
		{"data.pkl", pkl},
		{"byteorder", []byte("little")},
		{"version", []byte("3\n")},
	} {
		if err := zw.add(archiveName+"/"+r.name, r.data); err != nil {
			return fmt.Errorf("ckptwrite: write torch save: %w", err)
		}
	}
	if err := zw.close(); err != nil {
		return fmt.Errorf("ckptwrite: write torch save: %w", err)
	}
	return nil
}

type zipEntry struct {
	name   string
	crc    uint32
	size   uint64
	offset uint64
}

// torchZipWriter writes stored (method 0) zip entries with aligned data and ZIP64
// end records, the subset of zip that PyTorchStreamWriter produces.
type torchZipWriter struct {
	w       io.Writer
	off     uint64
	entries []zipEntry
}

func (z *torchZipWriter) write(b []byte) error {
	n, err := z.w.Write(b)
	z.off += uint64(n)
	return err
}

func (z *torchZipWriter) add(name string, data []byte) error {
	e := zipEntry{name: name, crc: crc32.ChecksumIEEE(data), size: uint64(len(data)), offset: z.off}
	const fixed = 30
	// The padding extra field has a 4-byte header of its own.
	headerEnd := z.off + fixed + uint64(len(name)) + 4
	pad := (torchAlign - headerEnd%torchAlign) % torchAlign
	var h bytes.Buffer
	le := func(v any) { _ = binary.Write(&h, binary.LittleEndian, v) }
	le(uint32(ckptformat.SigLocal))
	le(uint16(20)) // version needed
	le(uint16(0))  // flags
	le(uint16(0))  // method: stored
	le(uint16(0))  // time
	le(uint16(dosDate1980))
	le(e.crc)
	le(uint32(e.size))
	le(uint32(e.size))
	le(uint16(len(name)))
	le(uint16(4 + pad))
	h.WriteString(name)
	le(uint16(extraPadID))
	le(uint16(pad))
	h.Write(bytes.Repeat([]byte{'Z'}, int(pad)))
	if err := z.write(h.Bytes()); err != nil {
		return err
	}
	if err := z.write(data); err != nil {
		return err
	}
	z.entries = append(z.entries, e)
	return nil
}

func (z *torchZipWriter) close() error {
	var h bytes.Buffer
	le := func(v any) { _ = binary.Write(&h, binary.LittleEndian, v) }
	cdOffset := z.off
	for _, e := range z.entries {
		le(uint32(ckptformat.SigCentral))
		le(uint16(zipVersion64)) // made by
		le(uint16(20))           // needed
		le(uint16(0))
		le(uint16(0))
		le(uint16(0))
		le(uint16(dosDate1980))
		le(e.crc)
		le(uint32(e.size))
		le(uint32(e.size))
		le(uint16(len(e.name)))
		le(uint16(0)) // extra
		le(uint16(0)) // comment
		le(uint16(0)) // disk
		le(uint16(0)) // internal attrs
		le(uint32(0)) // external attrs
		le(uint32(e.offset))
		h.WriteString(e.name)
	}
	cdSize := uint64(h.Len())
	end64Offset := cdOffset + cdSize
	n := uint64(len(z.entries))
	le(uint32(ckptformat.SigEnd64))
	le(uint64(ckptformat.End64Len - 12)) // size of the rest of this record
	le(uint16(zipVersion64))
	le(uint16(zipVersion64))
	le(uint32(0))
	le(uint32(0))
	le(n)
	le(n)
	le(cdSize)
	le(cdOffset)
	le(uint32(ckptformat.SigLocator64))
	le(uint32(0))
	le(end64Offset)
	le(uint32(1))
	le(uint32(ckptformat.SigEnd))
	le(uint16(0))
	le(uint16(0))
	le(uint16(min(n, 0xffff)))
	le(uint16(min(n, 0xffff)))
	le(uint32(min(cdSize, ckptformat.MaxUint32Mark)))
	le(uint32(min(cdOffset, ckptformat.MaxUint32Mark)))
	le(uint16(0))
	return z.write(h.Bytes())
}
