package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"runtime"

	"github.com/dapobench/dapobench/bench/towerbench"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/internal/npy"
)

func modelsCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var o, e bytes.Buffer
	err := run(context.Background(), args, &o, &e)
	return o.String(), e.String(), err
}

// writePNG writes a small gradient image.
func writePNG(t *testing.T, path string, seed int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for y := range 30 {
		for x := range 40 {
			img.Set(x, y, color.RGBA{uint8(x*6 + seed), uint8(y * 8), uint8((x + y + seed) * 3), 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func readNPY(t *testing.T, path string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestModelsTinyRun(t *testing.T) {
	tmp := t.TempDir()
	img := filepath.Join(tmp, "a.png")
	writePNG(t, img, 0)
	for _, c := range []struct {
		variant string
		outputs map[string][]int
	}{
		{"dapo", map[string][]int{"image_embed": {1, 16}, "patch_1": {1, 16, 32}, "patch_4": {1, 16, 32}, "text_embed": {2, 16}}},
		{"anomalyclip", map[string][]int{"image_embed": {1, 16}, "patch_4": {1, 17, 16}, "text_embed": {2, 16}}},
		{"plain", map[string][]int{"image_embed": {1, 16}, "patch_2": {1, 17, 32}, "text_embed": {2, 16}}},
		{"winclip", map[string][]int{"image_embed": {1, 16}, "tokens": {1, 17, 32}, "text_embed": {2, 16}}},
	} {
		t.Run(c.variant, func(t *testing.T) {
			dir := filepath.Join(tmp, c.variant)
			if _, _, err := modelsCLI(t, "models", "tiny", "--variant", c.variant, "--out", dir, "--seed", "3"); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(tmp, c.variant+"-out")
			stdout, _, err := modelsCLI(t, "models", "run", "--model", dir, "--device", "cpu", "--image", img,
				"--text", "a photo of a damaged object", "--text", "X X X X X bent anomaly object", "--out", out)
			if err != nil {
				t.Fatal(err)
			}
			for name, shape := range c.outputs {
				a := readNPY(t, filepath.Join(out, name+".npy"))
				if !slices.Equal(a.Shape, shape) {
					t.Errorf("%s.npy shape %v, want %v", name, a.Shape, shape)
				}
				if !strings.Contains(stdout, name+".npy") {
					t.Errorf("stdout does not list %s.npy:\n%s", name, stdout)
				}
			}
		})
	}
}

// TestModelsBuildMatchesTiny: building from a safetensors file with
// OpenAI key names (and one with Hugging Face names) gives the same graphs
// and the same outputs as models tiny with the same seed.
func TestModelsBuildMatchesTiny(t *testing.T) {
	tmp := t.TempDir()
	img := filepath.Join(tmp, "a.png")
	writePNG(t, img, 7)
	const seed = 5
	for _, v := range []clip.Variant{clip.DAPO, clip.WinCLIP} {
		a := clip.TinyArch(v)
		w := clip.TinyWeights(a, seed)
		archJSON, _ := json.Marshal(a)
		archPath := filepath.Join(tmp, string(v)+"-arch.json")
		if err := os.WriteFile(archPath, archJSON, 0o644); err != nil {
			t.Fatal(err)
		}
		openai := filepath.Join(tmp, string(v)+"-openai.safetensors")
		if err := w.WriteSafetensors(openai); err != nil {
			t.Fatal(err)
		}
		hf := filepath.Join(tmp, string(v)+"-hf.safetensors")
		if err := toHF(w).WriteSafetensors(hf); err != nil {
			t.Fatal(err)
		}
		tiny := filepath.Join(tmp, string(v)+"-tiny")
		if _, _, err := modelsCLI(t, "models", "tiny", "--variant", string(v), "--seed", strconv.Itoa(seed), "--image-size", "40", "--out", tiny); err != nil {
			t.Fatal(err)
		}
		for _, src := range []string{openai, hf} {
			built := src + ".model"
			if _, _, err := modelsCLI(t, "models", "build", "--weights", src, "--arch-config", archPath, "--variant", string(v), "--image-size", "40", "--out", built); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{clip.ImageFile, clip.TextFile, clip.TokenEmbeddingFile} {
				a, _ := os.ReadFile(filepath.Join(tiny, f))
				b, _ := os.ReadFile(filepath.Join(built, f))
				if len(a) == 0 || !bytes.Equal(a, b) {
					t.Errorf("%s: %s differs from models tiny's", filepath.Base(built), f)
				}
			}
			m, err := clip.ReadManifest(built)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := clip.FileSHA256(src)
			if err != nil {
				t.Fatal(err)
			}
			if m.Weights.File != filepath.Base(src) || m.Weights.SHA256 != sum {
				t.Errorf("model.json weights = %+v, want %s and sha256 %s", m.Weights, filepath.Base(src), sum)
			}
		}
		// and the outputs agree
		outs := []string{}
		for _, dir := range []string{tiny, openai + ".model", hf + ".model"} {
			out := dir + ".out"
			if _, _, err := modelsCLI(t, "models", "run", "--model", dir, "--device", "cpu", "--image", img, "--text", "a photo of a scratched object", "--out", out); err != nil {
				t.Fatal(err)
			}
			outs = append(outs, out)
		}
		for _, name := range []string{"image_embed.npy", "text_embed.npy"} {
			ref := readNPY(t, filepath.Join(outs[0], name))
			for _, o := range outs[1:] {
				if got := readNPY(t, filepath.Join(o, name)); !slices.Equal(got.Data, ref.Data) {
					t.Errorf("%s: %s differs from models tiny's", o, name)
				}
			}
		}
	}
}

// toHF renames OpenAI-keyed weights to Hugging Face CLIPModel names.
func toHF(w clip.Weights) clip.Weights {
	out := clip.Weights{}
	tr := func(t clip.Tensor) clip.Tensor {
		r, c := t.Shape[0], t.Shape[1]
		o := clip.NewTensor(c, r)
		for i := range r {
			for j := range c {
				o.Data[j*r+i] = t.Data[i*c+j]
			}
		}
		return o
	}
	rename := strings.NewReplacer(
		"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight",
		"visual.class_embedding", "vision_model.embeddings.class_embedding",
		"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight",
		"visual.ln_pre.", "vision_model.pre_layrnorm.",
		"visual.ln_post.", "vision_model.post_layernorm.",
		"visual.transformer.resblocks.", "vision_model.encoder.layers.",
		"token_embedding.weight", "text_model.embeddings.token_embedding.weight",
		"ln_final.", "text_model.final_layer_norm.",
		".attn.out_proj.", ".self_attn.out_proj.",
		".ln_1.", ".layer_norm1.", ".ln_2.", ".layer_norm2.",
		".mlp.c_fc.", ".mlp.fc1.", ".mlp.c_proj.", ".mlp.fc2.",
	)
	for k, t := range w {
		switch {
		case k == "visual.proj":
			out["visual_projection.weight"] = tr(t)
		case k == "text_projection":
			out["text_projection.weight"] = tr(t)
		case k == "positional_embedding":
			out["text_model.embeddings.position_embedding.weight"] = t
		case strings.HasSuffix(k, ".attn.in_proj_weight"), strings.HasSuffix(k, ".attn.in_proj_bias"):
			base := strings.TrimSuffix(strings.TrimSuffix(k, "_weight"), "_bias")
			base = strings.TrimSuffix(base, ".attn.in_proj")
			if strings.HasPrefix(base, "transformer.") {
				base = "text_model.encoder.layers." + strings.TrimPrefix(base, "transformer.resblocks.")
			} else {
				base = rename.Replace(base)
			}
			kind := "weight"
			if strings.HasSuffix(k, "_bias") {
				kind = "bias"
			}
			n := t.Shape[0] / 3
			size := len(t.Data) / 3
			for i, p := range []string{"q", "k", "v"} {
				shape := append([]int{n}, t.Shape[1:]...)
				out[base+".self_attn."+p+"_proj."+kind] = clip.Tensor{Shape: shape, Data: t.Data[i*size : (i+1)*size]}
			}
		case strings.HasPrefix(k, "transformer."):
			out["text_model.encoder.layers."+rename.Replace(strings.TrimPrefix(k, "transformer.resblocks."))] = t
		default:
			out[rename.Replace(k)] = t
		}
	}
	return out
}

func TestModelsBadInput(t *testing.T) {
	tmp := t.TempDir()
	a := clip.TinyArch(clip.Plain)
	w := clip.TinyWeights(a, 1)
	w["visual.proj"] = clip.NewTensor(32, 8)
	bad := filepath.Join(tmp, "bad.safetensors")
	if err := w.WriteSafetensors(bad); err != nil {
		t.Fatal(err)
	}
	archJSON, _ := json.Marshal(a)
	archPath := filepath.Join(tmp, "arch.json")
	os.WriteFile(archPath, archJSON, 0o644)
	notWeights := filepath.Join(tmp, "notes.txt")
	os.WriteFile(notWeights, []byte("not a weights file at all"), 0o644)
	for _, c := range []struct {
		name  string
		args  []string
		usage bool
		want  []string
	}{
		{"mis-shaped", []string{"models", "build", "--weights", bad, "--arch-config", archPath, "--variant", "plain", "--out", filepath.Join(tmp, "m1")},
			false, []string{"bad.safetensors", `"visual.proj"`, "[32 8]", "[32 16]"}},
		{"missing file", []string{"models", "build", "--weights", filepath.Join(tmp, "nope.pth"), "--arch", "ViT-L-14-336", "--variant", "dapo", "--out", filepath.Join(tmp, "m2")},
			false, []string{"nope.pth"}},
		{"not weights", []string{"models", "build", "--weights", notWeights, "--arch-config", archPath, "--variant", "plain", "--out", filepath.Join(tmp, "m3")},
			false, []string{"notes.txt"}},
		{"wrong arch", []string{"models", "build", "--weights", bad, "--arch", "ViT-B-16-plus-240", "--variant", "winclip", "--out", filepath.Join(tmp, "m4")},
			false, []string{"ln_final.bias", "want [640]"}},
		{"unknown preset", []string{"models", "build", "--weights", bad, "--arch", "ViT-H", "--variant", "plain", "--out", filepath.Join(tmp, "m5")},
			true, []string{"ViT-H", "ViT-L-14-336"}},
		{"two archs", []string{"models", "build", "--weights", bad, "--arch", "ViT-L-14-336", "--arch-config", archPath, "--variant", "plain", "--out", tmp},
			true, []string{"exactly one"}},
		{"variant", []string{"models", "tiny", "--variant", "clipper", "--out", tmp}, true, []string{"clipper"}},
		{"act", []string{"models", "build", "--weights", bad, "--arch", "ViT-L-14-336", "--act", "relu", "--variant", "plain", "--out", tmp}, true, []string{"relu"}},
		{"layers", []string{"models", "tiny", "--variant", "dapo", "--feature-layers", "2,9", "--out", filepath.Join(tmp, "m6")}, false, []string{"feature layer 9"}},
		{"no model", []string{"models", "run", "--model", filepath.Join(tmp, "none"), "--text", "x", "--out", tmp}, false, []string{"model.json"}},
		{"no inputs", []string{"models", "run", "--model", tmp, "--out", tmp}, true, []string{"--image or --text"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := modelsCLI(t, c.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, cli.ErrUsage) != c.usage {
				t.Errorf("usage error = %v, want %v: %v", errors.Is(err, cli.ErrUsage), c.usage, err)
			}
			for _, s := range c.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
	// a failed build leaves no model.json behind
	if _, err := os.Stat(filepath.Join(tmp, "m1", clip.ManifestFile)); err == nil {
		t.Error("failed build left a model.json")
	}
}

func TestModelsRunBadImage(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "m")
	if _, _, err := modelsCLI(t, "models", "tiny", "--variant", "plain", "--out", dir); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(tmp, "broken.png")
	os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nbroken"), 0o644)
	_, _, err := modelsCLI(t, "models", "run", "--model", dir, "--device", "cpu", "--image", bad, "--out", filepath.Join(tmp, "o"))
	if err == nil || !strings.Contains(err.Error(), "broken.png") {
		t.Errorf("error %v does not name the image", err)
	}
}

// TestModelsBench times a tiny model's image tower and compares its
// float16 build with the float32 one on the same images; models tiny
// --arch-config builds seeded weights of the architecture given.
func TestModelsBench(t *testing.T) {
	tmp := t.TempDir()
	a := clip.TinyArch(clip.DAPO)
	a.Name, a.VisionLayers = "tiny-deeper", 6
	archJSON, _ := json.Marshal(a)
	archPath := filepath.Join(tmp, "arch.json")
	os.WriteFile(archPath, archJSON, 0o644)
	f32, f16 := filepath.Join(tmp, "f32"), filepath.Join(tmp, "f16")
	for _, args := range [][]string{
		{"models", "tiny", "--variant", "dapo", "--arch-config", archPath, "--out", f32},
		{"models", "tiny", "--variant", "dapo", "--arch-config", archPath, "--fp16", "--out", f16},
	} {
		if _, _, err := modelsCLI(t, args...); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := clip.ReadManifest(f32); err != nil || m.Arch.Name != "tiny-deeper" || m.Arch.VisionLayers != 6 {
		t.Fatalf("models tiny --arch-config: %+v %v", m, err)
	}
	stdout, _, err := modelsCLI(t, "models", "bench", "--model", f16, "--reference", f32, "--device", "cpu", "--batch", "2", "--images", "4", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r towerbench.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	var raw map[string]any
	json.Unmarshal([]byte(stdout), &raw)
	for _, k := range []string{"images_per_s", "peak_rss_bytes"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("--json has no %s", k)
		}
	}
	if r.Images != 4 || r.Batch != 2 || !(r.ImagesPerS > 0) || r.DType != "float16" || !(r.GFLOPPerImage > 0) || !(r.FractionOfPeak > 0) {
		t.Errorf("report %+v", r)
	}
	if runtime.GOOS == "linux" && r.PeakRSSBytes <= 0 {
		t.Errorf("peak RSS %d", r.PeakRSSBytes)
	}
	if len(r.Reference) != 5 { // image_embed and four patch layers
		t.Fatalf("compared %d outputs, want 5: %+v", len(r.Reference), r.Reference)
	}
	for _, c := range r.Reference {
		if !(c.Cosine > 0.999) || !(c.MaxAbsDiff < 0.05*c.MaxAbsRef) {
			t.Errorf("%s: float16 against float32: %+v", c.Output, c)
		}
	}
	stdout, _, err = modelsCLI(t, "models", "bench", "--model", f32, "--device", "cpu")
	if err != nil || !strings.Contains(stdout, "images/s") || !strings.Contains(stdout, "peak") {
		t.Errorf("text report: %v\n%s", err, stdout)
	}
	for _, args := range [][]string{
		{"models", "bench"},
		{"models", "tiny", "--variant", "dapo", "--arch", "ViT-L-14-336", "--arch-config", archPath, "--out", tmp},
	} {
		if _, _, err := modelsCLI(t, args...); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%v: error %v, want a usage error", args, err)
		}
	}
	if _, _, err := modelsCLI(t, "models", "bench", "--model", f32, "--reference", filepath.Join(tmp, "none"), "--device", "cpu"); err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("missing reference: %v", err)
	}
}
