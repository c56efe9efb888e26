package checkpoints

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
)

// Pickle opcodes of protocol 2 used by writePickle.
const (
	opProto      = 0x80
	opStop       = '.'
	opNone       = 'N'
	opNewTrue    = 0x88
	opNewFalse   = 0x89
	opBinInt1    = 'K'
	opBinInt2    = 'M'
	opBinInt     = 'J'
	opLong1      = 0x8a
	opBinFloat   = 'G'
	opBinUnicode = 'X'
	opEmptyDict  = '}'
	opEmptyList  = ']'
	opMark       = '('
	opSetItems   = 'u'
	opAppends    = 'e'
)

// writePickle encodes obj as a protocol-2 pickle: maps with string keys (written in
// sorted key order, so output is deterministic), slices, strings, integers, floats,
// bools and nil. It writes no memo, which the unpickler does not need for a tree.
func writePickle(obj any) ([]byte, error) {
	var b bytes.Buffer
	b.Write([]byte{opProto, 2})
	if err := pickleValue(&b, reflect.ValueOf(obj), 0); err != nil {
		return nil, err
	}
	b.WriteByte(opStop)
	return b.Bytes(), nil
}

// maxPickleDepth bounds recursion, so a cyclic structure is an error, not a crash.
const maxPickleDepth = 100

func pickleValue(b *bytes.Buffer, v reflect.Value, depth int) error {
	if depth > maxPickleDepth {
		return fmt.Errorf("pickle: nesting deeper than %d (a cycle?)", maxPickleDepth)
	}
	if !v.IsValid() {
		b.WriteByte(opNone)
		return nil
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			b.WriteByte(opNone)
			return nil
		}
		return pickleValue(b, v.Elem(), depth+1)
	case reflect.Bool:
		if v.Bool() {
			b.WriteByte(opNewTrue)
		} else {
			b.WriteByte(opNewFalse)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		pickleInt(b, big.NewInt(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		pickleInt(b, new(big.Int).SetUint64(v.Uint()))
	case reflect.Float32, reflect.Float64:
		b.WriteByte(opBinFloat)
		var f [8]byte
		binary.BigEndian.PutUint64(f[:], math.Float64bits(v.Float()))
		b.Write(f[:])
	case reflect.String:
		s := v.String()
		b.WriteByte(opBinUnicode)
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
		b.Write(n[:])
		b.WriteString(s)
	case reflect.Slice, reflect.Array:
		b.WriteByte(opEmptyList)
		if v.Len() == 0 {
			return nil
		}
		b.WriteByte(opMark)
		for i := 0; i < v.Len(); i++ {
			if err := pickleValue(b, v.Index(i), depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(opAppends)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("pickle: map key type %s: only string keys are supported", v.Type().Key())
		}
		b.WriteByte(opEmptyDict)
		if v.Len() == 0 {
			return nil
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		b.WriteByte(opMark)
		for _, k := range keys {
			if err := pickleValue(b, k, depth+1); err != nil {
				return err
			}
			if err := pickleValue(b, v.MapIndex(k), depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(opSetItems)
	default:
		return fmt.Errorf("pickle: unsupported type %s", v.Type())
	}
	return nil
}

// pickleInt writes the shortest protocol-2 encoding of n, as CPython's pickler does.
func pickleInt(b *bytes.Buffer, n *big.Int) {
	switch {
	case n.Sign() >= 0 && n.IsInt64() && n.Int64() <= 0xff:
		b.Write([]byte{opBinInt1, byte(n.Int64())})
	case n.Sign() >= 0 && n.IsInt64() && n.Int64() <= 0xffff:
		b.WriteByte(opBinInt2)
		var x [2]byte
		binary.LittleEndian.PutUint16(x[:], uint16(n.Int64()))
		b.Write(x[:])
	case n.IsInt64() && n.Int64() >= math.MinInt32 && n.Int64() <= math.MaxInt32:
		b.WriteByte(opBinInt)
		var x [4]byte
		binary.LittleEndian.PutUint32(x[:], uint32(int32(n.Int64())))
		b.Write(x[:])
	default:
		le := longBytes(n)
		b.Write([]byte{opLong1, byte(len(le))})
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
