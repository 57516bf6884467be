package rawfloat

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestBytes(t *testing.T) {
	v := []float32{1, -2.5, float32(math.Inf(1)), 3e-39}
	b, ok := Bytes(v)
	if !ok {
		t.Skip("big-endian machine")
	}
	if len(b) != 16 {
		t.Fatalf("%d bytes", len(b))
	}
	for i, x := range v {
		if got := binary.LittleEndian.Uint32(b[4*i:]); got != math.Float32bits(x) {
			t.Errorf("value %d: bytes %08x, want %08x", i, got, math.Float32bits(x))
		}
	}
	binary.LittleEndian.PutUint32(b[4:], math.Float32bits(7))
	if v[1] != 7 {
		t.Error("the bytes do not alias the values")
	}
	if b, ok := Bytes(nil); !ok || len(b) != 0 {
		t.Errorf("empty: %v %v", b, ok)
	}
}

func TestFloats(t *testing.T) {
	if !littleEndian {
		t.Skip("big-endian machine")
	}
	buf := make([]byte, 20) // a float32's alignment from the allocator
	want := []float32{1, -2.5, float32(math.Inf(1)), 3e-39}
	for i, x := range want {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	v, ok := Floats(buf[:16])
	if !ok || len(v) != 4 {
		t.Fatalf("aligned: %v %v", v, ok)
	}
	for i := range want {
		if math.Float32bits(v[i]) != math.Float32bits(want[i]) {
			t.Errorf("value %d: %v, want %v", i, v[i], want[i])
		}
	}
	buf[3] = 0x40 // 1.0 (3f800000) becomes 4.0 (40800000)
	if v[0] != 4 {
		t.Error("the values do not alias the bytes")
	}
	if _, ok := Floats(buf[1:17]); ok {
		t.Error("a misaligned view was accepted")
	}
	if _, ok := Floats(buf[:6]); ok {
		t.Error("a length that is not a multiple of 4 was accepted")
	}
	if v, ok := Floats(nil); !ok || len(v) != 0 {
		t.Errorf("empty: %v %v", v, ok)
	}
}
