package clip_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

func buildTiny(t *testing.T, o clip.Options) (string, *clip.Manifest) {
	t.Helper()
	dir := t.TempDir()
	m, err := clip.BuildTiny(context.Background(), dir, 2, o)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func TestBuildDeterministic(t *testing.T) {
	for _, v := range clip.Variants() {
		d1, m := buildTiny(t, clip.Options{Variant: v, ImageSize: 40})
		d2, _ := buildTiny(t, clip.Options{Variant: v, ImageSize: 40})
		for _, f := range m.Files {
			a, err1 := os.ReadFile(filepath.Join(d1, f))
			b, err2 := os.ReadFile(filepath.Join(d2, f))
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Errorf("%s: %s differs between two builds (%v, %v)", v, f, err1, err2)
			}
		}
	}
}

// runAll runs a directory's image and text graphs on seeded inputs.
func runAll(t *testing.T, rt *runner.Runtime, dir string, m *clip.Manifest) map[string][]float32 {
	t.Helper()
	ctx := context.Background()
	s := m.ImageSize
	a := m.Arch
	in := map[string]runner.Tensor{
		clip.InPixels:   {Shape: []int64{2, 3, int64(s), int64(s)}, Float32: clip.SeededUniform(11, 2*3*s*s)},
		clip.InEmbeds:   {Shape: []int64{3, 77, int64(a.TextWidth)}, Float32: clip.SeededUniform(12, 3*77*a.TextWidth)},
		clip.InEOTIndex: {Shape: []int64{3}, Int64: []int64{8, 9, 12}},
	}
	if m.VisualPromptDepth > 0 {
		n := m.VisualPromptDepth * clip.DeepTokens * a.VisionWidth
		in[clip.InVisualPrompts] = runner.Tensor{Shape: []int64{int64(m.VisualPromptDepth), clip.DeepTokens, int64(a.VisionWidth)}, Float32: clip.SeededUniform(13, n)}
	}
	if m.TextPromptDepth > 0 {
		n := m.TextPromptDepth * clip.DeepTokens * a.TextWidth
		in[clip.InDeepTokens] = runner.Tensor{Shape: []int64{int64(m.TextPromptDepth), clip.DeepTokens, int64(a.TextWidth)}, Float32: clip.SeededUniform(14, n)}
	}
	out := map[string][]float32{}
	for _, k := range []string{"image", "text"} {
		sess, err := rt.Load(ctx, m.Path(dir, k))
		if err != nil {
			t.Fatal(err)
		}
		feed := map[string]runner.Tensor{}
		for _, i := range sess.Inputs() {
			feed[i.Name] = in[i.Name]
		}
		res, err := sess.Run(ctx, feed)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		for n, r := range res {
			out[n] = r.Float32
		}
		sess.Close()
	}
	return out
}

func TestExternalData(t *testing.T) {
	rt := openRuntime(t)
	inline, m := buildTiny(t, clip.Options{Variant: clip.DAPO})
	ext, _ := buildTiny(t, clip.Options{Variant: clip.DAPO, External: true})
	for _, f := range []string{clip.ImageFile, clip.TextFile} {
		st, err := os.Stat(filepath.Join(ext, f+".data"))
		if err != nil || st.Size() == 0 {
			t.Fatalf("%s.data: %v", f, err)
		}
		small, _ := os.Stat(filepath.Join(ext, f))
		big, _ := os.Stat(filepath.Join(inline, f))
		if small.Size()*4 > big.Size() {
			t.Errorf("%s with external data is %d bytes, inline %d", f, small.Size(), big.Size())
		}
	}
	a, b := runAll(t, rt, inline, m), runAll(t, rt, ext, m)
	for n := range a {
		if d := maxAbsDiff(a[n], b[n]); d != 0 {
			t.Errorf("%s: external-data model differs by %g", n, d)
		}
	}
}

// TestFP16 runs the float16 build (meant for GPUs) on the CPU and checks it
// against the float32 build within float16 precision.
func TestFP16(t *testing.T) {
	rt := openRuntime(t)
	for _, v := range []clip.Variant{clip.DAPO, clip.AnomalyCLIP} {
		d32, m := buildTiny(t, clip.Options{Variant: v})
		d16, m16 := buildTiny(t, clip.Options{Variant: v, FP16: true})
		if m16.DType != "float16" {
			t.Errorf("dtype %q", m16.DType)
		}
		a, b := runAll(t, rt, d32, m), runAll(t, rt, d16, m16)
		for n := range a {
			scale := 0.0
			for _, x := range a[n] {
				scale = math.Max(scale, math.Abs(float64(x)))
			}
			d := maxAbsDiff(a[n], b[n])
			t.Logf("%s %s: max |fp16 − fp32| = %.3g (max |fp32| %.3g)", v, n, d, scale)
			if d > 0.03*scale || math.IsNaN(d) {
				t.Errorf("%s %s: fp16 differs by %g (scale %g)", v, n, d, scale)
			}
		}
		st16, _ := os.Stat(filepath.Join(d16, clip.ImageFile))
		st32, _ := os.Stat(filepath.Join(d32, clip.ImageFile))
		if st16.Size()*3 > st32.Size()*2 {
			t.Errorf("fp16 image.onnx is %d bytes, fp32 %d", st16.Size(), st32.Size())
		}
	}
}

func TestManifest(t *testing.T) {
	dir, m := buildTiny(t, clip.Options{Variant: clip.AnomalyCLIP, ImageSize: 48})
	got, err := clip.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Variant != clip.AnomalyCLIP || got.Grid != 6 || got.PatchDim != m.Arch.EmbedDim || got.PosResize != clip.Bilinear ||
		got.TextPromptDepth != 3 || got.DPAMLayers != 3 || *got.Weights.Seed != 2 || len(got.Tokenizer.VocabSHA256) != 64 {
		t.Errorf("manifest %+v", got)
	}
	table, err := got.ReadTokenEmbedding(dir)
	if err != nil || table.Shape[0] != 49408 || table.Shape[1] != 32 {
		t.Errorf("token embedding %v, %v", table.Shape, err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, clip.ManifestFile))
	for _, c := range []struct{ from, to, want string }{
		{`"schema": "dapobench/model/v1"`, `"schema": "other"`, "schema"},
		{`"grid": 6`, `"grid": 7`, "derived fields"},
		{`"variant": "anomalyclip"`, `"variant": "clipseg"`, "unknown variant"},
		{`"dtype": "float32"`, `"dtype": "int8"`, "dtype"},
		{`"image": "image.onnx"`, `"image": "../image.onnx"`, "files.image"},
		{`"grid": 6`, `"grid": 6, "extra": 1`, "unknown field"},
	} {
		bad := strings.Replace(string(raw), c.from, c.to, 1)
		if bad == string(raw) {
			t.Fatalf("%q not in model.json", c.from)
		}
		_, err := clip.ParseManifest([]byte(bad))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s → %s: error %v, want %q", c.from, c.to, err, c.want)
		}
	}
	if _, err := clip.ReadManifest(t.TempDir()); err == nil || !strings.Contains(err.Error(), "model.json") {
		t.Errorf("empty directory: %v", err)
	}
}

func TestBuildCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if _, err := clip.BuildTiny(ctx, dir, 1, clip.Options{Variant: clip.Plain}); err == nil {
		t.Fatal("cancelled build succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, clip.ManifestFile)); err == nil {
		t.Error("cancelled build wrote model.json")
	}
}

func FuzzParseManifest(f *testing.F) {
	dir := f.TempDir()
	if _, err := clip.BuildTiny(context.Background(), dir, 1, clip.Options{Variant: clip.DAPO}); err != nil {
		f.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, clip.ManifestFile))
	f.Add(raw)
	f.Add([]byte(`{"schema":"dapobench/model/v1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := clip.ParseManifest(b)
		if err != nil {
			return
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	})
}
