package half

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// TestHalfNumpy checks float32→float16 rounding against numpy's astype
// (testdata/half.json from testdata/gen_half.py).
func TestHalfNumpy(t *testing.T) {
	data, err := os.ReadFile("testdata/half.json")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][2]uint32
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		f := math.Float32frombits(r[0])
		if got := FromFloat32(f); got != uint16(r[1]) {
			t.Errorf("FromFloat32(%g) = %#04x, numpy %#04x", f, got, r[1])
		}
	}
}

func TestHalfExhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := ToFloat32(uint16(h))
		if f != f {
			continue
		}
		if got := FromFloat32(f); got != uint16(h) {
			t.Fatalf("%#04x → %g → %#04x", h, f, got)
		}
	}
}
