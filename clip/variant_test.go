package clip_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/tokenizer"
	"github.com/dapobench/dapobench/onnx/runner"
)

// TestFactoryArch: the aprilgan and multiads variants run exact GELU when
// the image size differs from the architecture's, as APRIL-GAN's factory
// rebuilds ViT-L at 518 px, and keep the architecture's activation at its
// own size; other variants are left alone. Model directories record it.
func TestFactoryArch(t *testing.T) {
	a, err := clip.Preset("ViT-L-14-336")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		v    clip.Variant
		size int
		want clip.Act
	}{
		{clip.APRILGAN, 518, clip.GELU}, {clip.MultiADS, 518, clip.GELU},
		{clip.APRILGAN, 336, clip.QuickGELU}, {clip.APRILGAN, 0, clip.QuickGELU},
		{clip.DAPO, 518, clip.QuickGELU}, {clip.Plain, 518, clip.QuickGELU},
	} {
		if got := clip.FactoryArch(c.v, a, c.size).Act; got != c.want {
			t.Errorf("%s at %d: %s, want %s", c.v, c.size, got, c.want)
		}
	}
	tiny := clip.TinyArch(clip.Plain) // QuickGELU
	m, err := clip.Build(context.Background(), t.TempDir(), tiny, clip.TinyWeights(tiny, 1), clip.Options{Variant: clip.MultiADS, ImageSize: 48}, clip.SourceInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Arch.Act != clip.GELU {
		t.Errorf("multiads model at 48 px records %s", m.Arch.Act)
	}
	if clip.TinyArch(clip.APRILGAN).Act != clip.GELU {
		t.Error("the tiny aprilgan architecture is not GELU")
	}
	if _, err := clip.ParseVariant("aprilgan"); err != nil {
		t.Error(err)
	}
	if _, err := clip.ParseVariant("nope"); err == nil || !strings.Contains(err.Error(), "multiads") {
		t.Errorf("unknown variant: %v", err)
	}
}

// TestTruncatedText: the aprilgan tower takes prompts cut after their last
// end-of-text token and gives exactly the features of the full 77-token
// input.
func TestTruncatedText(t *testing.T) {
	dir, m := buildTiny(t, clip.Options{Variant: clip.APRILGAN})
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	sess, err := rt.Load(context.Background(), filepath.Join(dir, clip.TextFile))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	table, err := m.ReadTokenEmbedding(dir)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tokenizer.New()
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"a photo of a bottle.", "a bad photo of a metal_nut with a crack defect.", "x"}
	embeds, eot, err := clip.TextInputs(tk, table, texts)
	if err != nil {
		t.Fatal(err)
	}
	cut := clip.TruncateText(m.Variant, embeds, eot)
	if cut.Shape[1] >= tokenizer.ContextLength || cut.Shape[1] != int(slices.Max(eot))+1 {
		t.Fatalf("cut to %v for end-of-text indices %v", cut.Shape, eot)
	}
	run := func(e clip.Tensor) []float32 {
		out, err := sess.Run(context.Background(), map[string]runner.Tensor{
			clip.InEmbeds:   {Shape: []int64{int64(e.Shape[0]), int64(e.Shape[1]), int64(e.Shape[2])}, Float32: e.Data},
			clip.InEOTIndex: {Shape: []int64{int64(len(eot))}, Int64: eot},
		})
		if err != nil {
			t.Fatal(err)
		}
		return out[clip.OutTextFeatures].Float32
	}
	full, short := run(embeds), run(cut)
	if !slices.Equal(full, short) {
		t.Errorf("features of cut prompts differ from the full ones:\n%v\n%v", full, short)
	}
	if got := clip.TruncateText(clip.DAPO, embeds, eot); got.Shape[1] != tokenizer.ContextLength {
		t.Errorf("a dapo input was cut to %v", got.Shape)
	}
}

// TestArchFrom: a preset name or an architecture file, never both.
func TestArchFrom(t *testing.T) {
	want, err := clip.Preset("ViT-L-14-336")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "arch.json")
	b, _ := json.Marshal(want)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		preset, file string
		ok           bool
		err          string
	}{
		{"ViT-L-14-336", "", true, ""},
		{"", file, true, ""},
		{"", "", false, ""},
		{"ViT-L-14-336", file, false, "not both"},
		{"ViT-H", "", false, "unknown architecture"},
		{"", filepath.Join(t.TempDir(), "none.json"), false, "none.json"},
	} {
		a, ok, err := clip.ArchFrom(c.preset, c.file)
		if ok != c.ok || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q %q: ok %v, err %v; want %v, %q", c.preset, c.file, ok, err, c.ok, c.err)
		}
		if ok && a != want {
			t.Errorf("%q %q: %+v, want %+v", c.preset, c.file, a, want)
		}
	}
	if n := clip.VariantNames(); len(n) != len(clip.Variants()) || n[0] != string(clip.Variants()[0]) {
		t.Errorf("VariantNames %v", n)
	}
}
