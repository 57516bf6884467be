package clip

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReadTorch reads checkpoints written in torch.save's zip layout by
// testdata/torch/gen_pth.py: nested dicts, an nn.Parameter, fp16, a
// transposed view and an offset view of a shared storage, an int64 tensor
// and an unrelated pickled object.
func TestReadTorch(t *testing.T) {
	data, err := os.ReadFile("testdata/torch/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]struct {
		Shape []int     `json:"shape"`
		Data  []float64 `json:"data"`
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTensors("testdata/torch/dapo_like.pth")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["prompt_learner.token_ids"]; ok {
		t.Error("int64 tensor read as a float tensor")
	}
	if len(got) != 5 {
		t.Errorf("read %d tensors, want 5: %v", len(got), keys(got))
	}
	sd, err := ReadWeights("testdata/torch/clip_state.pth")
	if err != nil {
		t.Fatal(err)
	}
	got["visual.proj"] = sd["visual.proj"] // "state_dict." and "module." dropped
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("missing %s (have %v)", name, keys(got))
			continue
		}
		if !slices.Equal(g.Shape, w.Shape) {
			t.Errorf("%s: shape %v, want %v", name, g.Shape, w.Shape)
			continue
		}
		for i := range w.Data {
			if math.Abs(float64(g.Data[i])-w.Data[i]) > 1e-6*math.Max(1, math.Abs(w.Data[i])) {
				t.Errorf("%s[%d] = %v, want %v", name, i, g.Data[i], w.Data[i])
				break
			}
		}
	}
}

func keys(m map[string]Tensor) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

func TestReadTensorsErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, content, want string
	}{
		{"empty.pth", "", "too short"},
		{"junk.safetensors", "hello world, not tensors", "neither"},
		{"badzip.pth", "PK\x03\x04garbage", "torch checkpoint"},
	} {
		p := filepath.Join(dir, c.name)
		os.WriteFile(p, []byte(c.content), 0o644)
		_, err := ReadTensors(p)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: error %v, want it to name the file and say %q", c.name, err, c.want)
		}
	}
}

func TestCheckWeights(t *testing.T) {
	a := TinyArch(Plain)
	w := TinyWeights(a, 1)
	if err := w.Check(a); err != nil {
		t.Fatal(err)
	}
	delete(w, "ln_final.bias")
	w["visual.proj"] = NewTensor(16, 32)
	err := w.Check(a)
	if !errors.Is(err, ErrWeights) {
		t.Fatalf("Check = %v", err)
	}
	for _, s := range []string{`missing tensor "ln_final.bias" (want shape [32])`, `tensor "visual.proj" has shape [16 32], want [32 16]`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%v does not say %q", err, s)
		}
	}
}

func TestTinyWeightsSeeded(t *testing.T) {
	a := TinyArch(DAPO)
	w1, w2, w3 := TinyWeights(a, 7), TinyWeights(a, 7), TinyWeights(a, 8)
	p := "visual.transformer.resblocks.2.attn.in_proj_weight"
	if !slices.Equal(w1[p].Data, w2[p].Data) || slices.Equal(w1[p].Data, w3[p].Data) {
		t.Error("TinyWeights is not a function of the seed")
	}
	// Drift of the generator itself is caught by TestParity, which checks
	// the committed testdata/parity/weights.safetensors the numpy reference read.
}

func TestArchConfig(t *testing.T) {
	good, _ := json.Marshal(TinyArch(Plain))
	for _, c := range []struct {
		name, json, want string
	}{
		{"good", string(good), ""},
		{"unknown field", `{"name":"x","image_size":32,"patch_size":8,"vision_width":32,"vision_layers":1,"vision_heads":2,"text_width":32,"text_layers":1,"text_heads":2,"context_length":77,"vocab_size":10,"embed_dim":8,"act":"gelu","extra":1}`, "unknown field"},
		{"heads", `{"name":"x","image_size":32,"patch_size":8,"vision_width":30,"vision_layers":1,"vision_heads":4,"text_width":32,"text_layers":1,"text_heads":2,"context_length":77,"vocab_size":10,"embed_dim":8,"act":"gelu"}`, "not divisible"},
		{"act", `{"name":"x","image_size":32,"patch_size":8,"vision_width":32,"vision_layers":1,"vision_heads":2,"text_width":32,"text_layers":1,"text_heads":2,"context_length":77,"vocab_size":10,"embed_dim":8,"act":"relu"}`, "act"},
		{"zero", `{"name":"x","image_size":32,"patch_size":0}`, "patch_size = 0"},
		{"syntax", `{"name":`, "architecture config"},
	} {
		_, err := ParseArch([]byte(c.json))
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	for _, n := range PresetNames() {
		a, err := Preset(n)
		if err != nil || a.Validate() != nil {
			t.Errorf("preset %s: %v", n, err)
		}
	}
}

func TestResizeCoefficients(t *testing.T) {
	for _, f := range []func(int, int) [][]weightAt{aaBicubicCoeffs, bilinearCoeffs} {
		for _, io := range [][2]int{{24, 37}, {37, 24}, {4, 6}, {15, 15}} {
			for o, ks := range f(io[0], io[1]) {
				s := 0.0
				for _, k := range ks {
					s += k.w
					if k.i < 0 || k.i >= io[0] {
						t.Fatalf("%v: output %d reads input %d", io, o, k.i)
					}
				}
				if math.Abs(s-1) > 1e-12 {
					t.Errorf("%v: output %d weights sum to %v", io, o, s)
				}
			}
		}
	}
}

func FuzzParseArch(f *testing.F) {
	good, _ := json.Marshal(TinyArch(Plain))
	f.Add(good)
	f.Add([]byte(`{"name":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := ParseArch(b); err == nil {
			if a.Validate() != nil {
				t.Fatal("ParseArch accepted an invalid architecture")
			}
		}
	})
}
