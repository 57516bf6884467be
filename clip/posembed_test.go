package clip

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestBicubicTorch compares the plain bicubic positional resize with
// PyTorch's F.interpolate(mode="bicubic", align_corners=False) on seeded
// tables, upsampling, downsampling and the same size
// (testdata/torch/gen_bicubic.py).
func TestBicubicTorch(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "torch", "bicubic.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			G0, G1, W      int
			Table, Resized []float32
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	for _, c := range ref.Cases {
		got, err := resizePos(Tensor{Shape: []int{1 + c.G0*c.G0, c.W}, Data: c.Table}, c.G0, c.G1, Bicubic)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Data) != len(c.Resized) {
			t.Fatalf("%d → %d: %d values, torch %d", c.G0, c.G1, len(got.Data), len(c.Resized))
		}
		worst := 0.0
		for i, v := range got.Data {
			worst = math.Max(worst, math.Abs(float64(v-c.Resized[i])))
		}
		// PyTorch's vectorised kernel rounds its float32 weights a little
		// differently (docs/methods.md#adaclip-pos-embed).
		if worst > 5e-6 {
			t.Errorf("%d → %d: max |Δ| %.3g from torch", c.G0, c.G1, worst)
		}
		t.Logf("%d → %d: max |Δ| %.3g from torch", c.G0, c.G1, worst)
	}
}
