// Package towerbench measures a model directory's image tower on its own:
// images per second, peak memory, and the fraction of the device's
// measured matrix-product peak it reaches (docs/README.md#models-bench).
// It tells a user what a full benchmark will cost before starting it, and
// it is the yardstick the pipeline's end-to-end throughput is compared to.
package towerbench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/memstat"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Options configure a measurement.
type Options struct {
	// Batch is the number of images per run; 0 is bench.DefaultBatchFor
	// the runtime's provider.
	Batch int
	// Images is the number of images timed, after one untimed warm-up
	// batch; 0 means 4 batches.
	Images int
	// Reference is a second model directory (typically the float32 build
	// of a float16 one) whose image tower runs on the same images; the
	// report then compares every output.
	Reference string
	// Seed draws the images (uniform in [-1, 1) after normalisation).
	Seed uint64
}

// Report is what Measure found; it is also `models bench --json`.
type Report struct {
	Model    string `json:"model"`
	Dir      string `json:"model_dir"`
	DType    string `json:"dtype"`
	Provider string `json:"execution_provider"`
	Threads  int    `json:"threads"`
	Batch    int    `json:"batch"`
	Images   int    `json:"images"`
	// Seconds is the timed part: Images images after the warm-up.
	Seconds     float64 `json:"seconds"`
	ImagesPerS  float64 `json:"images_per_s"`
	LoadSeconds float64 `json:"load_seconds"`
	// PeakRSSBytes is the process's peak resident memory (host memory,
	// onnxruntime's included) while loading and running the tower; 0 where
	// the platform does not tell.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// WeightsBytes is the size of the image graph's files.
	WeightsBytes int64 `json:"weights_bytes"`
	// GFLOPPerImage is the tower's multiply-adds ×2 per image, counted
	// from the architecture (matrix products only).
	GFLOPPerImage float64 `json:"gflop_per_image"`
	GFLOPPerS     float64 `json:"gflop_per_s"`
	// PeakGFLOPPerS is the device's measured matrix-product throughput
	// (a square MatMul in the tower's dtype, same runtime and threads),
	// and FractionOfPeak the tower's share of it.
	PeakGFLOPPerS  float64 `json:"peak_gflop_per_s"`
	FractionOfPeak float64 `json:"fraction_of_peak"`
	// Reference compares the outputs with Options.Reference's, by name.
	Reference []Comparison `json:"reference,omitempty"`
}

// Comparison is one output of the tower against the reference tower's on
// the same images.
type Comparison struct {
	Output string `json:"output"`
	// MaxAbsDiff is the largest absolute difference; MaxAbsRef the largest
	// absolute reference value, for scale.
	MaxAbsDiff float64 `json:"max_abs_diff"`
	MaxAbsRef  float64 `json:"max_abs_ref"`
	// Cosine is the cosine similarity of the whole output tensors.
	Cosine float64 `json:"cosine"`
}

// Measure loads the image tower of dir and times it.
func Measure(ctx context.Context, rt *runner.Runtime, dir string, o Options) (*Report, error) {
	man, err := clip.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if o.Batch == 0 {
		o.Batch = bench.DefaultBatchFor(rt.Provider())
	}
	if o.Batch < 0 || o.Images < 0 {
		return nil, fmt.Errorf("towerbench: batch %d, images %d: want positive numbers", o.Batch, o.Images)
	}
	if o.Images == 0 {
		o.Images = 4 * o.Batch
	}
	memstat.ResetPeak()
	start := time.Now()
	s, err := rt.Load(ctx, man.Path(dir, "image"))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	r := &Report{Model: man.Arch.Name + " " + string(man.Variant) + "@" + fmt.Sprint(man.ImageSize), Dir: dir, DType: man.DType,
		Provider: s.Provider(), Threads: rt.Threads(), Batch: o.Batch, LoadSeconds: time.Since(start).Seconds(),
		GFLOPPerImage: ImageGFLOP(man)}
	for _, f := range []string{man.Files["image"], man.Files["image"] + ".data"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil {
			r.WeightsBytes += st.Size()
		}
	}
	in, err := inputs(s, man, o.Batch, o.Seed)
	if err != nil {
		return nil, err
	}
	outs, err := outputs(s, o.Batch)
	if err != nil {
		return nil, err
	}
	first, err := s.RunInto(ctx, in, outs) // warm-up
	if err != nil {
		return nil, err
	}
	if o.Reference != "" {
		if r.Reference, err = compare(ctx, rt, o.Reference, man, in, first); err != nil {
			return nil, err
		}
		// The reference's outputs were compared with the first run's;
		// the timed runs write into fresh buffers.
		if outs, err = outputs(s, o.Batch); err != nil {
			return nil, err
		}
	}
	start = time.Now()
	for done := 0; done < o.Images; done += o.Batch {
		if _, err := s.RunInto(ctx, in, outs); err != nil {
			return nil, err
		}
		r.Images += o.Batch
	}
	r.Seconds = time.Since(start).Seconds()
	r.ImagesPerS = float64(r.Images) / r.Seconds
	r.GFLOPPerS = r.GFLOPPerImage * r.ImagesPerS
	if peak, ok := memstat.Peak(); ok {
		r.PeakRSSBytes = peak
	}
	if r.PeakGFLOPPerS, err = MatMulPeak(ctx, rt, man.DType); err != nil {
		return nil, err
	}
	r.FractionOfPeak = r.GFLOPPerS / r.PeakGFLOPPerS
	return r, nil
}

// inputs are seeded pixels for a batch and zeros for the tower's other
// inputs (visual prompts), which do not change its cost.
func inputs(s *runner.Session, man *clip.Manifest, batch int, seed uint64) (map[string]runner.Tensor, error) {
	in := map[string]runner.Tensor{}
	for _, info := range s.Inputs() {
		shape := make([]int64, len(info.Shape))
		n := int64(1)
		for i, d := range info.Shape {
			if d < 0 {
				if i != 0 {
					return nil, fmt.Errorf("towerbench: input %s has a free dimension %d besides the batch", info.Name, i)
				}
				d = int64(batch)
			}
			shape[i] = d
			n *= d
		}
		if info.DType != runner.Float32 {
			return nil, fmt.Errorf("towerbench: input %s is %v, want float32", info.Name, info.DType)
		}
		v := make([]float32, n)
		if info.Name == clip.InPixels {
			v = clip.SeededUniform(seed, int(n))
		}
		in[info.Name] = runner.Tensor{Shape: shape, Float32: v}
	}
	if _, ok := in[clip.InPixels]; !ok {
		return nil, fmt.Errorf("towerbench: %s has no %s input", s.Name(), clip.InPixels)
	}
	return in, nil
}

// outputs allocates every output of a batch for RunInto: host buffers
// onnxruntime writes into, reused from run to run.
func outputs(s *runner.Session, batch int) (map[string]runner.Tensor, error) {
	out := map[string]runner.Tensor{}
	for _, info := range s.Outputs() {
		if info.Shape == nil || info.DType != runner.Float32 {
			return nil, fmt.Errorf("towerbench: output %s has no fixed float32 shape", info.Name)
		}
		shape := make([]int64, len(info.Shape))
		n := int64(1)
		for i, d := range info.Shape {
			if d < 0 {
				if i != 0 {
					return nil, fmt.Errorf("towerbench: output %s has a free dimension %d besides the batch", info.Name, i)
				}
				d = int64(batch)
			}
			shape[i] = d
			n *= d
		}
		out[info.Name] = runner.Tensor{Shape: shape, Float32: make([]float32, n)}
	}
	return out, nil
}

// compare runs the reference directory's image tower on the same inputs
// and compares the outputs both towers have.
func compare(ctx context.Context, rt *runner.Runtime, dir string, man *clip.Manifest, in, got map[string]runner.Tensor) ([]Comparison, error) {
	ref, err := clip.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if ref.Arch != man.Arch || ref.Variant != man.Variant || ref.ImageSize != man.ImageSize {
		return nil, fmt.Errorf("towerbench: reference %s is %s %s@%d, not %s %s@%d", dir, ref.Arch.Name, ref.Variant, ref.ImageSize, man.Arch.Name, man.Variant, man.ImageSize)
	}
	s, err := rt.Load(ctx, ref.Path(dir, "image"))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	want, err := s.Run(ctx, in)
	if err != nil {
		return nil, err
	}
	var out []Comparison
	for _, info := range s.Outputs() {
		g, w := got[info.Name], want[info.Name]
		if g.Float32 == nil || len(g.Float32) != len(w.Float32) {
			continue
		}
		c := Comparison{Output: info.Name}
		var dot, gg, ww float64
		for i, wv := range w.Float32 {
			gv := float64(g.Float32[i])
			c.MaxAbsDiff = math.Max(c.MaxAbsDiff, math.Abs(gv-float64(wv)))
			c.MaxAbsRef = math.Max(c.MaxAbsRef, math.Abs(float64(wv)))
			dot += gv * float64(wv)
			gg += gv * gv
			ww += float64(wv) * float64(wv)
		}
		c.Cosine = dot / math.Sqrt(gg*ww)
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("towerbench: %s and %s have no output in common", man.Arch.Name, dir)
	}
	return out, nil
}

// ImageGFLOP counts the image tower's matrix-product work per image in
// GFLOP (2 per multiply-add): the patch embedding, and per block the
// q/k/v, output and MLP projections (24·L·w²) and the two attention
// products (4·L²·w) over L tokens (class token, patches, and DAPO's four
// prompt tokens); AnomalyCLIP's V-V path adds its attention products and
// output projection in its blocks and a projection per feature layer.
// Element-wise work (layer norms, softmax, activations) is left out.
func ImageGFLOP(m *clip.Manifest) float64 {
	a := m.Arch
	g, w := float64(m.Grid), float64(a.VisionWidth)
	l := g*g + 1
	if m.Variant == clip.DAPO {
		l += clip.DeepTokens
	}
	f := 2 * g * g * 3 * float64(a.PatchSize*a.PatchSize) * w
	f += float64(a.VisionLayers) * (24*l*w*w + 4*l*l*w)
	if m.Variant == clip.AnomalyCLIP {
		f += float64(m.DPAMLayers) * (4*l*l*w + 2*l*w*w)
		f += float64(len(m.FeatureLayers)) * 2 * l * w * float64(a.EmbedDim)
	}
	f += 2 * w * float64(a.EmbedDim)
	return f / 1e9
}

// MatMulPeak measures the device's matrix-product throughput in GFLOP/s:
// the best of several runs of an [m, k]·[k, n] MatMul in dtype ("float32"
// or "float16") on the runtime's provider and threads, with the shapes of
// a ViT-L MLP product at 518 px rounded up (m 2048, k 1024, n 4096) on
// the CPU and 8192³ on a GPU.
func MatMulPeak(ctx context.Context, rt *runner.Runtime, dtype string) (float64, error) {
	m, k, n := 2048, 1024, 4096
	if rt.Provider() == runner.ProviderCUDA {
		m, k, n = 8192, 8192, 8192
	}
	float := graph.Float32
	if dtype == "float16" {
		float = graph.Float16
	}
	b := graph.New(float)
	x := b.In(b.Input("a", graph.Float32, graph.N(m), graph.N(k)))
	y := b.MatMul(x, b.Weight("b", []int{k, n}, clip.SeededUniform(2, k*n)))
	b.Output(b.Out(y), "c", graph.Float32, graph.N(m), graph.N(n))
	data, err := graph.Marshal(b.Model("matmul", nil))
	if err != nil {
		return 0, err
	}
	s, err := rt.LoadBytes(ctx, "matmul peak", data, "")
	if err != nil {
		return 0, err
	}
	defer s.Close()
	in := map[string]runner.Tensor{"a": {Shape: []int64{int64(m), int64(k)}, Float32: clip.SeededUniform(1, m*k)}}
	out := map[string]runner.Tensor{"c": {Shape: []int64{int64(m), int64(n)}, Float32: make([]float32, m*n)}}
	best := math.Inf(1)
	var total time.Duration
	for i := 0; i < 3 || (i < 20 && total < time.Second/2); i++ {
		t := time.Now()
		if _, err := s.RunInto(ctx, in, out); err != nil {
			return 0, err
		}
		d := time.Since(t)
		total += d
		if i > 0 { // the first run warms up
			best = math.Min(best, d.Seconds())
		}
	}
	return 2 * float64(m) * float64(k) * float64(n) / best / 1e9, nil
}

// Print writes the report for a reader.
func Print(w io.Writer, r *Report) {
	fmt.Fprintf(w, "%s (%s) on %s, %d threads, batch %d\n", r.Model, r.DType, r.Provider, r.Threads, r.Batch)
	fmt.Fprintf(w, "  %.3f images/s (%.3f s per image over %d images), loaded in %.1f s\n", r.ImagesPerS, 1/r.ImagesPerS, r.Images, r.LoadSeconds)
	fmt.Fprintf(w, "  %.1f GFLOP per image, %.1f GFLOP/s: %.0f%% of the device's measured matrix-product peak (%.1f GFLOP/s)\n",
		r.GFLOPPerImage, r.GFLOPPerS, 100*r.FractionOfPeak, r.PeakGFLOPPerS)
	if r.PeakRSSBytes > 0 {
		fmt.Fprintf(w, "  peak resident memory %.2f GB (image graph files %.2f GB)\n", float64(r.PeakRSSBytes)/1e9, float64(r.WeightsBytes)/1e9)
	}
	for _, c := range r.Reference {
		fmt.Fprintf(w, "  %s against the reference: max |diff| %.3g (max |ref| %.3g), cosine %.6f\n", c.Output, c.MaxAbsDiff, c.MaxAbsRef, c.Cosine)
	}
}
