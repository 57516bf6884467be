package train_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/safetensors"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/train"
)

func TestNewHead(t *testing.T) {
	d, a := tinyModel(t, clip.DAPO), tinyModel(t, clip.AnomalyCLIP)
	adapters := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, checkpoints.AdapterWeight(i), checkpoints.AdapterBias(i))
		}
		return out
	}
	prompts := []string{checkpoints.NormalCtx, checkpoints.AbnormalCtx, checkpoints.TextDeep}
	for _, tc := range []struct {
		scheme, variant string
		m               tiny
		classes         int
		layers          []int
		learnable       []string
	}{
		{checkpoints.DAPO, "", d, 21, []int{1, 2, 3, 4}, append(append(slices.Clone(prompts), checkpoints.VisualPrompts), adapters(0, 1, 2, 3)...)},
		{checkpoints.DAPO, "dapo/no-defect-words", d, 2, []int{1, 2, 3, 4}, append(append(slices.Clone(prompts), checkpoints.VisualPrompts), adapters(0, 1, 2, 3)...)},
		{checkpoints.DAPO, "dapo/handcrafted", d, 21, []int{1, 2, 3, 4}, append([]string{checkpoints.TextDeep, checkpoints.VisualPrompts}, adapters(0, 1, 2, 3)...)},
		{checkpoints.DAPO, "dapo/last-layer", d, 21, []int{4}, append(append(slices.Clone(prompts), checkpoints.VisualPrompts), adapters(3)...)},
		{checkpoints.AnomalyCLIP, "", a, 2, []int{4}, prompts},
	} {
		h, err := train.NewHead(tc.scheme, tc.variant, "mvtec", tc.m.man)
		if err != nil {
			t.Errorf("%s %q: %v", tc.scheme, tc.variant, err)
			continue
		}
		if h.Classes() != tc.classes || !slices.Equal(h.Layers, tc.layers) || !slices.Equal(h.Learnable(), tc.learnable) {
			t.Errorf("%s: %d classes, layers %v, learns %v", h.Variant, h.Classes(), h.Layers, h.Learnable())
		}
	}
	for _, tc := range []struct {
		scheme, variant, dataset string
		m                        tiny
		want                     string
	}{
		{"winclip", "", "mvtec", d, "unknown scheme"},
		{checkpoints.DAPO, "dapo/nope", "mvtec", d, "unknown variant"},
		{checkpoints.DAPO, "", "visa", d, "no training vocabulary"},
		{checkpoints.DAPO, "", "mvtec", a, "variant dapo"},
		{checkpoints.AnomalyCLIP, "anomalyclip/layers-2", "visa", a, "not a feature layer"},
	} {
		_, err := train.NewHead(tc.scheme, tc.variant, tc.dataset, tc.m.man)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q on %s: error %v, want %q", tc.scheme, tc.variant, tc.dataset, err, tc.want)
		}
	}
}

func TestPixelClass(t *testing.T) {
	m := tinyModel(t, clip.DAPO)
	h, err := train.NewHead(checkpoints.DAPO, "", "mvtec", m.man)
	if err != nil {
		t.Fatal(err)
	}
	none, err := train.NewHead(checkpoints.DAPO, "dapo/no-defect-words", "mvtec", m.man)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		h      *train.Head
		s      loaders.Sample
		want   int
		errStr string
	}{
		{h, loaders.Sample{Label: 0}, 0, ""},
		{h, loaders.Sample{Label: 1, DefectType: "broken_large"}, 2, ""}, // train.py gt_defect
		{h, loaders.Sample{Label: 1, DefectType: "manipulated_front"}, 1, ""},
		{h, loaders.Sample{Label: 1, DefectType: "pill_type"}, 20, ""},
		{h, loaders.Sample{Label: 1, DefectType: "scuff", RelImage: "x/test/scuff/0.png"}, 0, "scuff"},
		{none, loaders.Sample{Label: 1, DefectType: "scuff"}, 1, ""},
	} {
		k, err := tc.h.PixelClass(tc.s)
		if tc.errStr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errStr) {
				t.Errorf("%+v: error %v", tc.s, err)
			}
			continue
		}
		if err != nil || k != tc.want {
			t.Errorf("%s %q: class %d, %v; want %d", tc.h.Variant, tc.s.DefectType, k, err, tc.want)
		}
	}
}

func TestReadStateErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, ts []safetensors.Tensor, meta map[string]string) string {
		p := filepath.Join(dir, name)
		if err := safetensors.WriteFile(p, ts, meta); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m := tinyModel(t, clip.AnomalyCLIP)
	l, err := checkpoints.Untrained(checkpoints.AnomalyCLIP, m.man, clip.Tensor{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	learned := filepath.Join(dir, "learned.safetensors")
	if err := l.WriteFile(learned); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("not safetensors"), 0o644)
	good := &train.State{Settings: train.Settings{Scheme: checkpoints.AnomalyCLIP}, Tensors: l.Tensors, Adam: train.NewAdam(1e-3)}
	okPath := filepath.Join(dir, "ok.safetensors")
	if err := good.WriteFile(okPath); err != nil {
		t.Fatal(err)
	}
	// A state written before the mask rule was recorded read masks by
	// thresholding.
	if s, err := train.ReadState(okPath); err != nil || s.Epoch != 0 || len(s.Tensors) != 3 || s.Settings.MaskRule != train.MaskThreshold {
		t.Errorf("round trip: %v", err)
	}
	x := []float32{1, 2}
	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(dir, "missing"), "no such file"},
		{garbage, "state"},
		{learned, "not an epoch checkpoint: it has no optimiser state to resume; start a run from its tensors with --init"},
		{write("rule.safetensors", nil, map[string]string{"schema": train.StateSchema, "state": `{"settings":{"scheme":"anomalyclip","mask_rule":"round"}}`}), `mask rule "round"`},
		{write("meta.safetensors", nil, map[string]string{"schema": train.StateSchema, "state": "{"}), "metadata"},
		{write("epochs.safetensors", nil, map[string]string{"schema": train.StateSchema, "state": `{"epoch":2,"history":[]}`}), "history"},
		{write("unknown.safetensors", []safetensors.Tensor{safetensors.F32("what", []int{2}, x)},
			map[string]string{"schema": train.StateSchema, "state": `{"settings":{"scheme":"anomalyclip"}}`}), "unknown tensor"},
		{write("moment.safetensors", []safetensors.Tensor{safetensors.F32("adam.m/x", []int{2}, x)},
			map[string]string{"schema": train.StateSchema, "state": `{"settings":{"scheme":"anomalyclip"}}`}), "moment"},
		{write("empty.safetensors", nil, map[string]string{"schema": train.StateSchema, "state": `{"settings":{"scheme":"anomalyclip"}}`}), "missing"},
	} {
		_, err := train.ReadState(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", filepath.Base(tc.path), err, tc.want)
		}
	}
}
