package checkpoints

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/clip"
)

// TestUntrainedLinear: APRIL-GAN's and MultiADS' untrained tensors are one
// nn.Linear(Dv → De) per feature layer, weight and bias uniform in
// ±1/√Dv as torch initialises them; they round-trip through a file and
// refuse another scheme's model.
func TestUntrainedLinear(t *testing.T) {
	for _, scheme := range []string{APRILGAN, MultiADS} {
		_, m := tinyModel(t, clip.Variant(scheme))
		l, err := Untrained(scheme, m, clip.Tensor{}, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Tensors) != 2*len(m.FeatureLayers) {
			t.Fatalf("%s: %d tensors for %d feature layers: %v", scheme, len(l.Tensors), len(m.FeatureLayers), l.Names())
		}
		b := 1 / math.Sqrt(float64(m.Arch.VisionWidth))
		var w, bias []float32
		for i := range m.FeatureLayers {
			wt, bt := l.Tensors[AdapterWeight(i)], l.Tensors[AdapterBias(i)]
			if len(wt.Shape) != 2 || wt.Shape[0] != m.Arch.EmbedDim || wt.Shape[1] != m.Arch.VisionWidth || len(bt.Data) != m.Arch.EmbedDim {
				t.Fatalf("%s: layer %d: weight %v, bias %v", scheme, i, wt.Shape, bt.Shape)
			}
			w, bias = append(w, wt.Data...), append(bias, bt.Data...)
		}
		checkUniform(t, scheme+" weights", w, b)
		for i, v := range bias {
			if math.Abs(float64(v)) > b {
				t.Fatalf("%s: bias %d = %v outside ±%v", scheme, i, v, b)
			}
		}
		p := filepath.Join(t.TempDir(), "l.safetensors")
		if err := l.WriteFile(p); err != nil {
			t.Fatal(err)
		}
		back, err := ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := back.Check(m); err != nil {
			t.Error(err)
		}
		d, err := back.Dims()
		if err != nil || d.Adapters != len(m.FeatureLayers) || d.VisionWidth != m.Arch.VisionWidth || d.EmbedDim != m.Arch.EmbedDim {
			t.Errorf("%s: dims %+v, %v", scheme, d, err)
		}
		if _, dm := tinyModel(t, clip.DAPO); l.Check(dm) == nil {
			t.Errorf("%s tensors fit a dapo model", scheme)
		}
		// the official sizes: four layers 1024 → 768
		off, err := Untrained(scheme, nil, clip.Tensor{}, 5)
		if err != nil {
			t.Fatal(err)
		}
		if s := off.Tensors[AdapterWeight(3)].Shape; len(off.Tensors) != 8 || s[0] != 768 || s[1] != 1024 {
			t.Errorf("%s official sizes: %d tensors, fc.3 %v", scheme, len(off.Tensors), s)
		}
	}
}

// TestImportLinearErrors: a DAPO checkpoint read as APRIL-GAN's names the
// missing state dict, and an APRIL-GAN checkpoint read as DAPO's is
// recognised.
func TestImportLinearErrors(t *testing.T) {
	_, err := Import(filepath.Join("testdata", "dapo_train.pth"), APRILGAN, nil)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), `"trainable_linearlayer"`) {
		t.Errorf("a DAPO checkpoint as aprilgan: %v", err)
	}
	ts := map[string]clip.Tensor{"trainable_linearlayer.fc.0.weight": clip.NewTensor(768, 1024)}
	if h := hint(ts, DAPO); !strings.Contains(h, "aprilgan or multiads") {
		t.Errorf("hint %q", h)
	}
}
