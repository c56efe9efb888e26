package ckptwrite

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/trainwrap/trainwrap/internal/ckptformat"
)

// Tensor is one tensor to write with WriteSafetensors: its name, safetensors dtype
// ("F32", "BF16", ...), shape, and raw little-endian bytes.
type Tensor struct {
	Name  string
	DType string
	Shape []int64
	Data  []byte
}

// WriteSafetensors writes tensors and metadata to w in the safetensors format, byte
// for byte as the reference writer does: an 8-byte little-endian header length, a JSON
// header ("__metadata__" first, then the tensors in the order given, with contiguous
// data_offsets) right-padded with spaces to a multiple of 8, then the data. It rejects a
// tensor whose Data length does not match its dtype and shape, an unknown dtype, or a
// duplicate name, so a fixture can only be malformed on purpose. A nil metadata map
// writes no "__metadata__" entry.
func WriteSafetensors(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
	}
	if metadata != nil {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sep()
		hdr.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				hdr.WriteByte(',')
			}
			writeJSONString(&hdr, k)
			hdr.WriteByte(':')
			writeJSONString(&hdr, metadata[k])
		}
		hdr.WriteByte('}')
	}
	seen := make(map[string]bool, len(tensors))
	var offset int64
	for _, t := range tensors {
		if t.Name == "__metadata__" || seen[t.Name] {
			return fmt.Errorf("ckptwrite: write safetensors: tensor name %q used twice or reserved", t.Name)
		}
		seen[t.Name] = true
		want, ok := ckptformat.TensorBytes(t.DType, t.Shape)
		if !ok {
			return fmt.Errorf("ckptwrite: write safetensors: tensor %q: unknown dtype %q or bad shape %v", t.Name, t.DType, t.Shape)
		}
		if int64(len(t.Data)) != want {
			return fmt.Errorf("ckptwrite: write safetensors: tensor %q: %d data bytes, dtype %s shape %v needs %d", t.Name, len(t.Data), t.DType, t.Shape, want)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		sb, _ := json.Marshal(shape)
		sep()
		writeJSONString(&hdr, t.Name)
		fmt.Fprintf(&hdr, `:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, t.DType, sb, offset, offset+want)
		offset += want
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(hdr.Len()))
	if _, err := w.Write(n[:]); err != nil {
		return fmt.Errorf("ckptwrite: write safetensors: %w", err)
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return fmt.Errorf("ckptwrite: write safetensors: %w", err)
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return fmt.Errorf("ckptwrite: write safetensors: tensor %q: %w", t.Name, err)
		}
	}
	return nil
}

// writeJSONString writes s as a JSON string without HTML escaping, as serde_json
// does, so names with < > & stay byte-identical to the reference writer.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode appends a newline
}
