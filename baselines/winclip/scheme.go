package winclip

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Constants of anomalib's WinCLIP (docs/methods.md#winclip-class-score).
const (
	// Temperature divides the cosine similarities before the softmax
	// (torch_model.py TEMPERATURE = 0.07).
	Temperature = postproc.Temperature
	// abnormal is the index of the anomalous class in [normal, anomalous]
	// (class_scores(…, target_class=1)).
	abnormal = 1
	// windowChunk bounds the number of windows per run of the window graph,
	// and so the memory of one run (whole images per run, at least one).
	windowChunk = 2048
)

// DefaultScales are the window sides, in patches, of the zero-shot map:
// 2×2 and 3×3 (anomalib scales=(2, 3); docs/methods.md#winclip-windows).
// Extract stores the window embeddings of each of them that fits the model's patch grid.
func DefaultScales() []int { return []int{Small, Large} }

// WindowFeature names the cached window embeddings of scale k, [windows, De]
// in make_masks order.
func WindowFeature(k int) string { return "window_" + strconv.Itoa(k) }

// Options select a WinCLIP variant. The zero value is WinCLIP as anomalib
// runs it.
type Options struct {
	// Name labels the variant in results ("winclip" when empty).
	Name string
	// Scales are the window sides whose maps enter the multi-scale
	// harmonic mean; nil means DefaultScales. Each must be one of
	// DefaultScales, the windows Extract stores.
	Scales []int
	// NoWindows drops the window maps: the anomaly map is the image score
	// at every pixel (the harmonic mean over the image scale alone), so
	// pixel metrics measure how well the image score ranks the pixels of
	// whole images.
	NoWindows bool
	// Templates names the template list ("" means TemplatesAnomalib).
	Templates string
	// Object, when set, is the object word of every category instead of
	// the category's prompt name (anomalib falls back to "object" when it
	// has no category).
	Object string
}

// Scheme is WinCLIP as a bench.Scheme.
type Scheme struct {
	opt       Options
	templates []string
	scales    []int
}

// New checks the options and returns the scheme.
func New(opt Options) (*Scheme, error) {
	if opt.Name == "" {
		opt.Name = "winclip"
	}
	if opt.Templates == "" {
		opt.Templates = TemplatesAnomalib
	}
	t, err := Templates(opt.Templates)
	if err != nil {
		return nil, err
	}
	if opt.Object != "" && strings.TrimSpace(opt.Object) == "" {
		return nil, fmt.Errorf("winclip: blank object word")
	}
	s := &Scheme{opt: opt, templates: t}
	switch {
	case opt.NoWindows && opt.Scales != nil:
		return nil, fmt.Errorf("winclip: scales %v given with no windows", opt.Scales)
	case opt.NoWindows:
	case opt.Scales == nil:
		s.scales = DefaultScales()
	default:
		if len(opt.Scales) == 0 {
			return nil, fmt.Errorf("winclip: empty scale list (use NoWindows for the image-score map)")
		}
		for i, k := range opt.Scales {
			if !slices.Contains(DefaultScales(), k) {
				return nil, fmt.Errorf("winclip: window scale %d: only %v are extracted and cached", k, DefaultScales())
			}
			if slices.Contains(opt.Scales[:i], k) {
				return nil, fmt.Errorf("winclip: window scale %d given twice", k)
			}
		}
		s.scales = slices.Clone(opt.Scales)
	}
	return s, nil
}

// The scheme satisfies the pipeline's contract.
var _ bench.Scheme = (*Scheme)(nil)

// Name is the variant's name, as results and tables show it.
func (s *Scheme) Name() string { return s.opt.Name }

// Variant is the model variant whose graphs the scheme runs.
func (s *Scheme) Variant() clip.Variant { return clip.WinCLIP }

// Settings describe the variant for the run manifest.
func (s *Scheme) Settings() map[string]string {
	normal, anomalous := len(NormalStates()), len(AnomalousStates())
	m := map[string]string{
		"prompts": fmt.Sprintf("compositional ensemble: %d normal and %d anomalous states × %d templates (%s), mean of raw embeddings",
			normal, anomalous, len(s.templates), s.opt.Templates),
		"object":      "category prompt name",
		"temperature": strconv.FormatFloat(Temperature, 'g', -1, 64),
		"image_score": "softmax(cos(image, [normal, anomalous]) / τ)[anomalous]",
	}
	if s.opt.Object != "" {
		m["object"] = strconv.Quote(s.opt.Object)
	}
	if s.opt.NoWindows {
		m["scales"] = "none"
		m["map"] = "image score at every pixel"
	} else {
		ks := make([]string, len(s.scales))
		for i, k := range s.scales {
			ks[i] = fmt.Sprintf("%d×%d", k, k)
		}
		m["scales"] = strings.Join(ks, ", ") + " windows, stride " + strconv.Itoa(Stride)
		m["map"] = "harmonic mean of window scores per scale, harmonic mean with the image score, bilinear align_corners=False"
	}
	return m
}

// ImageInputs: the image tower takes only pixels.
func (s *Scheme) ImageInputs(m *bench.Model) (map[string]runner.Tensor, error) {
	if m.Manifest.Variant != clip.WinCLIP {
		return nil, fmt.Errorf("winclip: %s is a %s model, want %s", m.Dir, m.Manifest.Variant, clip.WinCLIP)
	}
	if _, err := s.windows(m.Manifest.Grid); err != nil {
		return nil, err
	}
	return nil, nil
}

// scale is the window layout of one scale on a grid.
type scale struct {
	k       int
	windows Windows
}

// windows lays out the scales the variant scores on a grid×grid patch grid.
func (s *Scheme) windows(grid int) ([]scale, error) {
	out := make([]scale, 0, len(s.scales))
	for _, k := range s.scales {
		w, err := NewWindows(grid, grid, k, Stride)
		if err != nil {
			return nil, fmt.Errorf("winclip: %d×%d windows on the model's %d×%d patch grid: %w", k, k, grid, grid, err)
		}
		out = append(out, scale{k: k, windows: w})
	}
	return out, nil
}

// Extract keeps the global embedding and encodes every window of every
// default scale that fits the grid: CLS plus the window's patch tokens,
// taken from the tokens before ln_pre, through the window graph
// (anomalib _get_window_embeddings; docs/methods.md#winclip-window-embedding,
// docs/methods.md#clip-winclip-graphs).
func (s *Scheme) Extract(ctx context.Context, m *bench.Model, out map[string]runner.Tensor, batch int) ([]bench.Features, error) {
	return extract(ctx, m, out, batch, windowChunk)
}

// extract is Extract with at most chunk windows per run of the window
// graph (whole images, at least one).
func extract(ctx context.Context, m *bench.Model, out map[string]runner.Tensor, batch, chunk int) ([]bench.Features, error) {
	feats, err := bench.SplitBatch(out, []string{clip.OutImageEmbed}, batch)
	if err != nil {
		return nil, fmt.Errorf("winclip: %w", err)
	}
	if m.Window == nil {
		return nil, fmt.Errorf("winclip: %s has no window graph", m.Dir)
	}
	g, width := m.Manifest.Grid, m.Manifest.Arch.VisionWidth
	tok, ok := out[clip.OutTokens]
	if !ok {
		return nil, fmt.Errorf("winclip: image tower has no %q output", clip.OutTokens)
	}
	seq := 1 + g*g
	if !slices.Equal(tok.Shape, []int64{int64(batch), int64(seq), int64(width)}) || len(tok.Float32) != batch*seq*width {
		return nil, fmt.Errorf("winclip: %s output has shape %v, want [%d %d %d] float32", clip.OutTokens, tok.Shape, batch, seq, width)
	}
	de := m.Manifest.EmbedDim
	for _, k := range DefaultScales() {
		if k > g {
			continue // scoring this scale fails with a clear error
		}
		w, err := NewWindows(g, g, k, Stride)
		if err != nil {
			return nil, fmt.Errorf("winclip: %w", err)
		}
		per := max(1, chunk/w.N) // images per run
		for i0 := 0; i0 < batch; i0 += per {
			n := min(per, batch-i0)
			in, err := gatherWindows(tok.Float32[i0*seq*width:(i0+n)*seq*width], n, seq, width, w)
			if err != nil {
				return nil, err
			}
			res, err := m.Window.Run(ctx, map[string]runner.Tensor{clip.InTokens: in})
			if err != nil {
				return nil, fmt.Errorf("winclip: window graph, %d×%d windows: %w", k, k, err)
			}
			e, ok := res[clip.OutImageEmbed]
			if !ok || len(e.Float32) != n*w.N*de {
				return nil, fmt.Errorf("winclip: window graph returned %v for %d windows of %d dimensions", e.Shape, n*w.N, de)
			}
			for j := range n {
				feats[i0+j].Tensors = append(feats[i0+j].Tensors, featcache.Tensor{
					Name: WindowFeature(k), Shape: []int{w.N, de}, Data: e.Float32[j*w.N*de : (j+1)*w.N*de],
				})
			}
		}
	}
	return feats, nil
}

// gatherWindows builds the window graph's input [n·windows, 1+K², width]
// from the token sequences [n, seq, width] of n images: for image b and
// window i, row b·windows+i holds the tokens at w.Tokens() (CLS, then
// each patch of the window, one past its patch index).
func gatherWindows(tokens []float32, n, seq, width int, w Windows) (runner.Tensor, error) {
	if len(tokens) != n*seq*width {
		return runner.Tensor{}, fmt.Errorf("winclip: %d token values for %d images of %d×%d", len(tokens), n, seq, width)
	}
	idx := w.Tokens()
	l := 1 + w.K*w.K
	out := make([]float32, 0, n*len(idx)*width)
	for b := range n {
		img := tokens[b*seq*width : (b+1)*seq*width]
		for _, t := range idx {
			if t >= seq {
				return runner.Tensor{}, fmt.Errorf("winclip: window token %d outside a sequence of %d", t, seq)
			}
			out = append(out, img[t*width:(t+1)*width]...)
		}
	}
	return runner.Tensor{Shape: []int64{int64(n * w.N), int64(l), int64(width)}, Float32: out}, nil
}

// Prepare encodes the category's prompt ensemble and returns its scorer.
func (s *Scheme) Prepare(ctx context.Context, m *bench.Model, c bench.Category) (bench.Scorer, error) {
	object := s.opt.Object
	if object == "" {
		object = c.PromptName
	}
	if object == "" {
		object = c.Name
	}
	normal, anomalous, err := Prompts(object, s.templates)
	if err != nil {
		return nil, fmt.Errorf("winclip: %s: %w", c.Name, err)
	}
	text, err := s.textFeatures(ctx, m, normal, anomalous)
	if err != nil {
		return nil, fmt.Errorf("winclip: %s: %w", c.Name, err)
	}
	return s.newScorer(text, m.Manifest.Grid, m.Manifest.ImageSize)
}

// textFeatures runs the text tower on both ensembles and returns the two
// class embeddings [2, De], normal first.
func (s *Scheme) textFeatures(ctx context.Context, m *bench.Model, normal, anomalous []string) (postproc.Mat, error) {
	embeds, eot, err := clip.TextInputs(m.Tokenizer, m.TokenEmbedding, append(slices.Clone(normal), anomalous...))
	if err != nil {
		return postproc.Mat{}, err
	}
	f, err := m.EncodeText(ctx, embeds, eot, nil)
	if err != nil {
		return postproc.Mat{}, err
	}
	return ClassEmbeddings(f, len(normal))
}

// ClassEmbeddings reduces prompt embeddings [N, De] (the first nNormal
// rows normal, the rest anomalous) to the two class embeddings [2, De]:
// the mean of the raw, unnormalised rows of each class (anomalib
// collect_text_embeddings; docs/methods.md#winclip-text-embedding), summed in
// float64.
func ClassEmbeddings(f clip.Tensor, nNormal int) (postproc.Mat, error) {
	if len(f.Shape) != 2 || f.Shape[0] <= nNormal || nNormal <= 0 || len(f.Data) != f.Shape[0]*f.Shape[1] {
		return postproc.Mat{}, fmt.Errorf("winclip: prompt embeddings of shape %v (%d values), %d of them normal", f.Shape, len(f.Data), nNormal)
	}
	n, d := f.Shape[0], f.Shape[1]
	out := postproc.Mat{Rows: 2, Cols: d, Data: make([]float32, 2*d)}
	for c, rows := range [2][2]int{{0, nNormal}, {nNormal, n}} {
		acc := make([]float64, d)
		for r := rows[0]; r < rows[1]; r++ {
			for i, v := range f.Data[r*d : (r+1)*d] {
				acc[i] += float64(v)
			}
		}
		for i, v := range acc {
			out.Data[c*d+i] = float32(v / float64(rows[1]-rows[0]))
		}
	}
	return out, nil
}

// newScorer is the scorer of given class embeddings on a grid×grid patch
// grid, with maps of size×size.
func (s *Scheme) newScorer(text postproc.Mat, grid, size int) (*scorer, error) {
	if text.Rows != 2 || text.Cols <= 0 || len(text.Data) != 2*text.Cols {
		return nil, fmt.Errorf("winclip: class embeddings %d×%d, want 2×De", text.Rows, text.Cols)
	}
	scales, err := s.windows(grid)
	if err != nil {
		return nil, err
	}
	up, err := postproc.NewBilinear(grid, grid, size, size, false)
	if err != nil {
		return nil, fmt.Errorf("winclip: %w", err)
	}
	return &scorer{text: text, grid: grid, size: size, scales: scales, up: up}, nil
}

// scorer scores the images of one category.
type scorer struct {
	text       postproc.Mat // [normal, anomalous] class embeddings, raw
	grid, size int
	scales     []scale
	up         *postproc.Bilinear
}

func (sc *scorer) Classes() []string          { return nil }
func (sc *scorer) ClassOf(string) (int, bool) { return 0, false }
func (sc *scorer) embedDim() int              { return sc.text.Cols }
func (sc *scorer) feature(f bench.Features, name string, rows int) ([]float32, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("winclip: features lack %s (extracted by a scheme without these windows?)", name)
	}
	if len(t.Data) != rows*sc.embedDim() {
		return nil, fmt.Errorf("winclip: %s has %d values (shape %v), want %d×%d", name, len(t.Data), t.Shape, rows, sc.embedDim())
	}
	return t.Data, nil
}

// classScores writes softmax(cos(x_i, [t_n, t_a]) / τ)[anomalous] for each
// row of x (anomalib class_scores).
func (sc *scorer) classScores(x []float32, rows int) ([]float32, error) {
	p := postproc.Mat{Rows: rows, Cols: 2, Data: make([]float32, 2*rows)}
	if err := postproc.CosineLogits(p, postproc.Mat{Rows: rows, Cols: sc.embedDim(), Data: x}, sc.text, Temperature); err != nil {
		return nil, fmt.Errorf("winclip: %w", err)
	}
	if err := postproc.Softmax(p); err != nil {
		return nil, fmt.Errorf("winclip: %w", err)
	}
	out := make([]float32, rows)
	for i := range out {
		out[i] = p.Data[2*i+abnormal]
	}
	return out, nil
}

// Score computes the image score and the zero-shot map (anomalib
// WinClipModel.forward with k_shot = 0).
func (sc *scorer) Score(ctx context.Context, f bench.Features) (*bench.Output, error) {
	emb, err := sc.feature(f, clip.OutImageEmbed, 1)
	if err != nil {
		return nil, err
	}
	img, err := sc.classScores(emb, 1)
	if err != nil {
		return nil, err
	}
	gridMap := make([]float32, sc.grid*sc.grid)
	if len(sc.scales) == 0 {
		for i := range gridMap {
			gridMap[i] = img[0]
		}
	} else {
		maps := make([][]float32, len(sc.scales))
		for i, s := range sc.scales {
			w, err := sc.feature(f, WindowFeature(s.k), s.windows.N)
			if err != nil {
				return nil, err
			}
			scores, err := sc.classScores(w, s.windows.N)
			if err != nil {
				return nil, err
			}
			maps[i] = make([]float32, sc.grid*sc.grid)
			if err := HarmonicAggregate(maps[i], scores, s.windows); err != nil {
				return nil, fmt.Errorf("winclip: %w", err)
			}
		}
		if err := MultiScaleHarmonic(gridMap, img[0], maps...); err != nil {
			return nil, fmt.Errorf("winclip: %w", err)
		}
	}
	out := &bench.Output{Image: img[0], Map: make([]float32, sc.size*sc.size)}
	if err := sc.up.Apply(postproc.Grid{C: 1, H: sc.size, W: sc.size, Data: out.Map}, postproc.Grid{C: 1, H: sc.grid, W: sc.grid, Data: gridMap}); err != nil {
		return nil, fmt.Errorf("winclip: %w", err)
	}
	return out, nil
}
