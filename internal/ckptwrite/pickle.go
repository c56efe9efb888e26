package ckptwrite

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"

	"github.com/trainwrap/trainwrap/internal/ckptformat"
)

// writePickle encodes obj as a protocol-2 pickle: maps with string keys (written in
// sorted key order, so output is deterministic), slices, strings, integers, floats,
// bools and nil. It writes no memo, which the unpickler does not need for a tree.
func writePickle(obj any) ([]byte, error) {
	var b bytes.Buffer
	b.Write([]byte{ckptformat.OpProto, 2})
	if err := pickleValue(&b, reflect.ValueOf(obj), 0); err != nil {
		return nil, err
	}
	b.WriteByte(ckptformat.OpStop)
	return b.Bytes(), nil
}

// maxPickleDepth bounds recursion, so a cyclic structure is an error, not a crash.
const maxPickleDepth = 100

func pickleValue(b *bytes.Buffer, v reflect.Value, depth int) error {
	if depth > maxPickleDepth {
		return fmt.Errorf("pickle: nesting deeper than %d (a cycle?)", maxPickleDepth)
	}
	if !v.IsValid() {
		b.WriteByte(ckptformat.OpNone)
		return nil
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			b.WriteByte(ckptformat.OpNone)
			return nil
		}
		return pickleValue(b, v.Elem(), depth+1)
	case reflect.Bool:
		if v.Bool() {
			b.WriteByte(ckptformat.OpNewTrue)
		} else {
			b.WriteByte(ckptformat.OpNewFalse)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		pickleInt(b, big.NewInt(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		pickleInt(b, new(big.Int).SetUint64(v.Uint()))
	case reflect.Float32, reflect.Float64:
		b.WriteByte(ckptformat.OpBinFloat)
		var f [8]byte
		binary.BigEndian.PutUint64(f[:], math.Float64bits(v.Float()))
		b.Write(f[:])
	case reflect.String:
		s := v.String()
		b.WriteByte(ckptformat.OpBinUnicode)
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
		b.Write(n[:])
		b.WriteString(s)
	case reflect.Slice, reflect.Array:
		b.WriteByte(ckptformat.OpEmptyList)
		if v.Len() == 0 {
			return nil
		}
		b.WriteByte(ckptformat.OpMark)
		for i := 0; i < v.Len(); i++ {
			if err := pickleValue(b, v.Index(i), depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(ckptformat.OpAppends)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("pickle: map key type %s: only string keys are supported", v.Type().Key())
		}
		b.WriteByte(ckptformat.OpEmptyDict)
		if v.Len() == 0 {
			return nil
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		b.WriteByte(ckptformat.OpMark)
		for _, k := range keys {
			if err := pickleValue(b, k, depth+1); err != nil {
				return err
			}
			if err := pickleValue(b, v.MapIndex(k), depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(ckptformat.OpSetItems)
	default:
		return fmt.Errorf("pickle: unsupported type %s", v.Type())
	}
	return nil
}

// pickleInt writes the shortest protocol-2 encoding of n, as CPython's pickler does.
func pickleInt(b *bytes.Buffer, n *big.Int) {
	switch {
	case n.Sign() >= 0 && n.IsInt64() && n.Int64() <= 0xff:
		b.Write([]byte{ckptformat.OpBinInt1, byte(n.Int64())})
	case n.Sign() >= 0 && n.IsInt64() && n.Int64() <= 0xffff:
		b.WriteByte(ckptformat.OpBinInt2)
		var x [2]byte
		binary.LittleEndian.PutUint16(x[:], uint16(n.Int64()))
		b.Write(x[:])
	case n.IsInt64() && n.Int64() >= math.MinInt32 && n.Int64() <= math.MaxInt32:
		b.WriteByte(ckptformat.OpBinInt)
		var x [4]byte
		binary.LittleEndian.PutUint32(x[:], uint32(int32(n.Int64())))
		b.Write(x[:])
	default:
		le := longBytes(n)
		b.Write([]byte{ckptformat.OpLong1, byte(len(le))})
		b.Write(le)
	}
}

// longBytes is n as little-endian two's complement in the fewest bytes that keep
// its sign, the payload of LONG1.
func longBytes(n *big.Int) []byte {
	size := n.BitLen()/8 + 1
	mod := new(big.Int).Lsh(big.NewInt(1), uint(size*8))
	v := new(big.Int).Set(n)
	if v.Sign() < 0 {
		v.Add(v, mod)
	}
	be := v.FillBytes(make([]byte, size))
	for i, j := 0, len(be)-1; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	return be
}
