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
