// Package rawfloat views float32 slices as the little-endian bytes that
// model files store (safetensors, ONNX raw and external data), so that
// reading and writing large weights is a copy rather than a conversion per
// value. On a big-endian machine it declines and callers convert.
package rawfloat

import (
	"encoding/binary"
	"unsafe"
)

// littleEndian is whether float32 values sit in memory as their
// little-endian encoding.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Bytes returns the memory of v as bytes, which are v's little-endian
// encoding, and true; on a big-endian machine it returns nil and false.
// The bytes alias v: writing them changes v.
func Bytes(v []float32) ([]byte, bool) {
	if !littleEndian {
		return nil, false
	}
	if len(v) == 0 {
		return []byte{}, true
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)), true
}

// Floats returns b as the float32 values it encodes in little-endian
// order, without copying, and true; the values alias b. It declines (nil,
// false) on a big-endian machine, or when b's length is not a multiple of
// 4 or its address is not aligned for float32.
func Floats(b []byte) ([]float32, bool) {
	if !littleEndian || len(b)%4 != 0 {
		return nil, false
	}
	if len(b) == 0 {
		return []float32{}, true
	}
	if uintptr(unsafe.Pointer(&b[0]))%unsafe.Alignof(float32(0)) != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), true
}
