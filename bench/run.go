package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/internal/parallel"
	"github.com/dapobench/dapobench/internal/progress"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/results"

	"github.com/dapobench/dapobench/internal/atomicfile"
)

// DefaultBatch is the number of images per image-tower run when the
// device is not known; DefaultBatchFor picks it per device.
const DefaultBatch = 1

// DefaultBatchFor is the number of images per image-tower run on an
// execution provider (docs/README.md#perf-batch): 1 on the CPU, where batching
// gains nothing (the tower's matrix products already fill every core) and
// multiplies the activations held at once; 8 on a GPU, whose throughput
// grows with the batch.
func DefaultBatchFor(provider string) int {
	if provider == runner.ProviderCUDA {
		return 8
	}
	return 1
}

// Config is one evaluation: a scheme over a dataset's test split.
type Config struct {
	Dataset string
	Loader  loaders.Options
	Model   *Model
	Scheme  Scheme
	// Out is the run directory: results.json, manifest.json, per-category
	// records (categories/), and maps/ when SaveMaps is set.
	Out   string
	Cache *featcache.Cache // nil: no feature cache
	// AUPRO is the AU-PRO variant reported as pixel_aupro.
	AUPRO metrics.AUPROVariant
	// Batch is the number of images per image-tower run; 0 picks
	// DefaultBatchFor the model's execution provider.
	Batch    int
	SaveMaps bool
	// Progress receives progress and log lines; nil is silent.
	Progress io.Writer
	// Workers score images in parallel (0: GOMAXPROCS).
	Workers int
	// PromptsFile is the file of learned prompt tensors the scheme was
	// built from ("" when untrained): its content is part of the run's
	// configuration.
	PromptsFile string
}

// Run evaluates the scheme on every category of the dataset's test split
// and returns the per-category results in category order.
//
// Out is a run directory of one configuration (docs/README.md#rundir-resume):
// a directory inside the dataset root, or one holding records of another
// configuration, is refused before anything is written. A category whose
// record in Out/categories has the fingerprint a fresh run would have (the
// configuration, the dapobench version, the samples and the content of
// their images and masks) and whose scores, examples and maps are all
// there is read back; any other is recomputed, and the log says why.
// results.json and manifest.json are removed first: only Finish writes them
// again, so an interrupted run never reads as complete.
func Run(ctx context.Context, cfg Config) ([]results.CategoryRecord, error) {
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatchFor(cfg.Model.Runtime.Provider())
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.AUPRO == "" {
		cfg.AUPRO = metrics.AUPROCflow200
	}
	if err := loaders.CheckOutside(cfg.Loader.Root, cfg.Out); err != nil {
		return nil, err
	}
	config, err := runConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkOut(cfg.Out, config); err != nil {
		return nil, err
	}
	set, err := loaders.Load(ctx, cfg.Dataset, cfg.Loader)
	if err != nil {
		return nil, err
	}
	x, err := NewExtractor(cfg.Model, cfg.Scheme, cfg.Cache)
	if err != nil {
		return nil, err
	}
	byCat := map[string][]loaders.Sample{}
	for _, s := range set.Samples {
		if s.Split == loaders.Test {
			byCat[s.Category] = append(byCat[s.Category], s)
		}
	}
	catDir := filepath.Join(cfg.Out, results.CategoriesDir)
	if err := os.MkdirAll(catDir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := clearFinish(cfg.Out); err != nil {
		return nil, err
	}
	// Categories done earlier are read back; the others go through one
	// stream, so that the image tower works on the next category while the
	// current one is scored and its metrics computed.
	records := make([]results.CategoryRecord, len(set.Categories))
	var todo []pending
	first := 0 // run-order index of the category's first sample
	for i, name := range set.Categories {
		samples := byCat[name]
		if len(samples) == 0 {
			return nil, fmt.Errorf("bench: %s: %s: no test samples", cfg.Dataset, name)
		}
		c := Category{Dataset: cfg.Dataset, Name: name, PromptName: samples[0].CategoryName, Cache: cfg.Cache}
		cFirst := first
		first += len(samples)
		for _, s := range samples {
			if s.Label == 1 && !slices.Contains(c.DefectTypes, s.DefectType) {
				c.DefectTypes = append(c.DefectTypes, s.DefectType)
			}
		}
		sort.Strings(c.DefectTypes)
		content, err := hashContent(ctx, samples)
		if err != nil {
			return nil, err
		}
		inputs := categoryInputs(samples, content)
		recPath := filepath.Join(catDir, results.CategoryFile(name)+".json")
		r, why := reuse(cfg, recPath, name, config, inputs, cFirst, samples)
		if why == "" && r.Fingerprint != "" {
			logf(cfg.Progress, "%s: %s: done earlier, read from %s", cfg.Scheme.Name(), name, recPath)
			records[i] = r
			continue
		}
		if why != "" {
			logf(cfg.Progress, "%s: %s: recomputed: %s", cfg.Scheme.Name(), name, why)
		}
		// The old record goes before any of its files is overwritten, so
		// that an interruption never pairs it with new scores or maps.
		if err := os.Remove(recPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bench: %w", err)
		}
		todo = append(todo, pending{index: i, c: c, samples: samples, contents: content.images, inputs: inputs, path: recPath, first: cFirst})
	}
	if err := runPending(ctx, cfg, x, config, todo, records); err != nil {
		return nil, err
	}
	if cfg.SaveMaps {
		if err := writeMapScores(cfg.Out, set.Categories); err != nil {
			return nil, err
		}
	}
	return records, nil
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// scored is one image's output with its ground truth at the evaluation
// resolution.
type scored struct {
	out  *Output
	mask []uint8
}

// pending is a category to compute.
type pending struct {
	index    int // in the dataset's category order
	c        Category
	samples  []loaders.Sample
	contents []string          // the images' sha256, the cache keys
	inputs   map[string]string // what the category's numbers depend on, besides the configuration
	path     string            // record file
	first    int               // run-order index of its first sample (PositionScorer)
}

// ahead is a batch of one category: prepared ahead of the image tower by
// prepare, then completed by the tower stage.
type ahead struct {
	cat   int // index into the pending categories
	start int // index of its first sample in the category
	b     *Batch
	feats []Features
	err   error
}

// runPending streams the pending categories through their stages
// (docs/README.md#perf-stages), which overlap: the images are hashed,
// looked up in the cache, decoded and preprocessed (prepare, in a
// goroutine); the image tower runs on the cache misses (tower, in another);
// and in the caller's goroutine the images of the completed batches are
// scored in parallel (scoreGroup), taken in sample order into the metrics,
// examples and saved maps (collect), and each category's files and
// metrics are written when its last image is in (finish). The first two
// stages run ahead across category boundaries, at most a few batches
// ahead of the scoring (maxQueued), which bounds the memory the stream
// holds.
func runPending(ctx context.Context, cfg Config, x *Extractor, config map[string]string, todo []pending, records []results.CategoryRecord) error {
	if len(todo) == 0 {
		return nil
	}
	// The scheme's text side first, for every category, then the text
	// tower goes, before the image tower loads: a run holds one tower at a
	// time (docs/README.md#perf-text-first). A scheme that runs the text
	// tower while scoring (AdaCLIP) loads it again on first use.
	scorers := make([]Scorer, len(todo))
	defer func() {
		for _, sc := range scorers {
			if cl, ok := sc.(io.Closer); ok {
				cl.Close()
			}
		}
	}()
	for k, p := range todo {
		sc, err := cfg.Scheme.Prepare(ctx, cfg.Model, p.c)
		if err != nil {
			return err
		}
		scorers[k] = sc
	}
	if err := cfg.Model.ReleaseText(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait() // the stages never outlive the run
	}()
	prepared := make(chan ahead, 1)
	// Completed batches queue up to the scoring's width, so that a run
	// over cached features (where the tower stage has nothing to do)
	// scores as many images at once as there are workers.
	completed := make(chan ahead, min(max(cfg.Workers, 1), maxQueued))
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(prepared)
		prepare(ctx, x, todo, cfg.Batch, prepared)
	}()
	go func() {
		defer wg.Done()
		defer close(completed)
		tower(ctx, x, prepared, completed)
	}()
	stream := &batches{ch: completed}
	for k, p := range todo {
		start := time.Now()
		r, computed, positional, err := scoreCategory(ctx, cfg, x, scorers[k], p, k, stream)
		if err != nil {
			return err
		}
		if positional {
			p.inputs[positionInput] = strconv.Itoa(p.first)
		}
		r.Fingerprint, r.Config, r.Inputs = fingerprint(p.c.Name, config, p.inputs), config, p.inputs
		r.Seconds = time.Since(start).Seconds()
		r.Computed, r.Cached = computed, len(p.samples)-computed
		if err := writeJSON(p.path, r); err != nil {
			return err
		}
		records[p.index] = r
	}
	return nil
}

// prepare reads the cache for, decodes and preprocesses the batches of
// every pending category in order.
func prepare(ctx context.Context, x *Extractor, todo []pending, size int, out chan<- ahead) {
	for k, p := range todo {
		for start := 0; start < len(p.samples); start += size {
			end := min(start+size, len(p.samples))
			paths := make([]string, 0, end-start)
			for _, s := range p.samples[start:end] {
				paths = append(paths, s.ImagePath)
			}
			b, err := x.PrepareHashed(ctx, paths, p.contents[start:end])
			select {
			case out <- ahead{cat: k, start: start, b: b, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}
}

// tower completes the prepared batches: the image tower on their cache
// misses.
func tower(ctx context.Context, x *Extractor, in <-chan ahead, out chan<- ahead) {
	for a := range in {
		if a.err == nil {
			a.feats, a.err = x.Complete(ctx, a.b)
		}
		select {
		case out <- a:
		case <-ctx.Done():
			return
		}
		if a.err != nil {
			return
		}
	}
}

// maxQueued bounds the completed batches waiting for the scoring: each
// holds its images' features (tens of MB per image for ViT-L at 518 px).
const maxQueued = 8

// batches is the scoring stage's end of the stream: the completed
// batches in order, one at a time or as many as are ready.
type batches struct {
	ch   <-chan ahead
	held *ahead // taken from ch by ready, not yet handed out
}

// next waits for the next batch; ok is false when the stream has ended.
func (b *batches) next(ctx context.Context) (a ahead, ok bool, err error) {
	if b.held != nil {
		a, b.held = *b.held, nil
		return a, true, nil
	}
	select {
	case a, ok = <-b.ch:
		return a, ok, nil
	case <-ctx.Done():
		return ahead{}, false, ctx.Err()
	}
}

// ready returns the next batch without waiting, when it is completed, of
// pending category k and without error; anything else stays for next.
func (b *batches) ready(k int) (ahead, bool) {
	if b.held == nil {
		select {
		case a, ok := <-b.ch:
			if !ok {
				return ahead{}, false
			}
			b.held = &a
		default:
			return ahead{}, false
		}
	}
	if a := *b.held; a.err == nil && a.cat == k {
		b.held = nil
		return a, true
	}
	return ahead{}, false
}

// scoreCategory scores a category's batches with its scorer as the tower
// stage completes them, and finishes the category. The batches that are
// ready together (up to cfg.Workers images) are scored in parallel: on the
// CPU a batch is one image, and a run over cached features is all scoring.
// It returns the record, the number of images whose features the image
// tower computed, and whether the scores depend on the category's place in
// the run (PositionScorer).
func scoreCategory(ctx context.Context, cfg Config, x *Extractor, sc Scorer, p pending, k int, stream *batches) (rec results.CategoryRecord, computed int, positional bool, err error) {
	t, err := newTally(p.c.Name, sc.Classes(), sc.ClassOf)
	if err != nil {
		return results.CategoryRecord{}, 0, false, err
	}
	col := &collector{cfg: cfg, size: x.Spec().Size, t: t, ex: newExamples(), classes: sc.Classes()}
	col.finisher, _ = sc.(ScoreFinisher)
	prog := progress.New(cfg.Progress, len(p.samples), cfg.Scheme.Name()+" "+p.c.Name)
	for done := 0; done < len(p.samples); {
		a, ok, err := stream.next(ctx)
		if err != nil {
			return results.CategoryRecord{}, 0, false, err
		}
		if !ok {
			if err := ctx.Err(); err != nil {
				return results.CategoryRecord{}, 0, false, err
			}
			return results.CategoryRecord{}, 0, false, fmt.Errorf("bench: %s: the image stream ended after %d of %d images", p.c.Name, done, len(p.samples))
		}
		if a.err != nil {
			return results.CategoryRecord{}, 0, false, a.err
		}
		group := []ahead{a}
		for n := len(a.feats); n < cfg.Workers; {
			more, ok := stream.ready(k)
			if !ok {
				break
			}
			group = append(group, more)
			n += len(more.feats)
		}
		for _, a := range group {
			if a.cat != k || a.start != done {
				return results.CategoryRecord{}, 0, false, fmt.Errorf("bench: %s: internal error: batch of category %d at %d, want %d at %d", p.c.Name, a.cat, a.start, k, done)
			}
			done += len(a.feats)
		}
		batch, outs, err := scoreGroup(ctx, cfg, x, sc, p.samples, group, p.first)
		if err != nil {
			return results.CategoryRecord{}, 0, false, err
		}
		for i, s := range batch {
			if err := col.collect(s, outs[i]); err != nil {
				return results.CategoryRecord{}, 0, false, err
			}
		}
		for _, a := range group {
			computed += a.b.Computed()
		}
		prog.Add(len(batch))
	}
	prog.Finish()
	if err := ctx.Err(); err != nil {
		return results.CategoryRecord{}, 0, false, err
	}
	_, positional = sc.(PositionScorer)
	rec, err = col.finish(ctx, p.c.Name, p.samples)
	return rec, computed, positional, err
}

// scoreGroup scores the images of consecutive completed batches of one
// category in parallel; first is the run-order index of the category's
// first sample (PositionScorer).
func scoreGroup(ctx context.Context, cfg Config, x *Extractor, sc Scorer, samples []loaders.Sample, group []ahead, first int) ([]loaders.Sample, []scored, error) {
	start := group[0].start
	var feats []Features
	for _, a := range group {
		feats = append(feats, a.feats...)
	}
	batch := samples[start : start+len(feats)]
	outs := make([]scored, len(batch))
	size := x.Spec().Size
	err := parallel.For(ctx, len(batch), cfg.Workers, func(ctx context.Context, i int) error {
		var err error
		outs[i], err = scoreOne(ctx, sc, first+start+i, feats[i], batch[i], x, size)
		return err
	})
	return batch, outs, err
}

// collector takes a category's scored images in sample order: into the
// metrics, the kept examples, and the saved maps.
type collector struct {
	cfg     Config
	size    int
	t       *tally
	ex      *examples
	classes []string
	scores  []float64
	saved   *classFile // class maps' index, with SaveMaps and multi-type classes
	// finisher turns the raw scores into the final ones; nil keeps them.
	finisher ScoreFinisher
}

func (c *collector) collect(s loaders.Sample, o scored) error {
	if len(o.out.Map) != c.size*c.size {
		return fmt.Errorf("bench: %s: map has %d values, want %d×%d", s.RelImage, len(o.out.Map), c.size, c.size)
	}
	c.scores = append(c.scores, float64(o.out.Image))
	c.ex.offer(s, o.out)
	if err := c.t.add(s, float64(o.out.Image), o.out.Map, o.mask, c.size, c.size, o.out.ClassMaps, o.out.ClassScores); err != nil {
		return err
	}
	if !c.cfg.SaveMaps {
		return nil
	}
	if err := saveMap(c.cfg.Out, s, o.out.Map, c.size); err != nil {
		return err
	}
	if c.classes == nil {
		return nil
	}
	if c.saved == nil {
		c.saved = newClassFile(s.Category, c.classes)
	}
	return c.saved.save(c.cfg.Out, s, o.out, c.size, c.t.classOf)
}

// finish writes the category's scores, examples and saved class-map index,
// then computes its metrics.
func (c *collector) finish(ctx context.Context, name string, samples []loaders.Sample) (results.CategoryRecord, error) {
	if c.finisher != nil {
		final, err := c.finisher.FinishScores(slices.Clone(c.scores))
		if err != nil {
			return results.CategoryRecord{}, fmt.Errorf("bench: %s: %w", name, err)
		}
		if len(final) != len(c.scores) {
			return results.CategoryRecord{}, fmt.Errorf("bench: %s: %d final scores for %d images", name, len(final), len(c.scores))
		}
		c.scores, c.t.scores = final, slices.Clone(final)
		c.ex.rescore(final)
	}
	if err := writeScores(c.cfg.Out, name, samples, c.scores); err != nil {
		return results.CategoryRecord{}, err
	}
	if err := c.ex.write(c.cfg.Out, name, c.size); err != nil {
		return results.CategoryRecord{}, err
	}
	if c.saved != nil {
		if err := c.saved.write(c.cfg.Out, c.cfg.Scheme); err != nil {
			return results.CategoryRecord{}, err
		}
	}
	return c.t.record(ctx, c.cfg.AUPRO)
}

// scoreOne scores the run's n-th image and resizes its mask to the
// evaluation size.
func scoreOne(ctx context.Context, sc Scorer, n int, f Features, s loaders.Sample, x *Extractor, size int) (scored, error) {
	var out *Output
	var err error
	if ps, ok := sc.(PositionScorer); ok {
		out, err = ps.ScoreAt(ctx, n, f)
	} else {
		out, err = sc.Score(ctx, f)
	}
	if err != nil {
		return scored{}, fmt.Errorf("bench: %s: %w", s.RelImage, err)
	}
	mask := make([]uint8, size*size)
	if s.MaskPath != "" {
		m, err := loaders.ReadMask(s.MaskPath)
		if err != nil {
			return scored{}, err
		}
		if err := x.Spec().Mask(mask, m.Pix, m.Width, m.Height); err != nil {
			return scored{}, fmt.Errorf("bench: %s: %w", s.RelMask, err)
		}
	}
	return scored{out: out, mask: mask}, nil
}

// saveMap writes an anomaly map as float32 .npy under maps/, mirroring the
// image's dataset-relative path, the layout `dapobench eval` reads.
func saveMap(out string, s loaders.Sample, m []float32, size int) error {
	rel := strings.TrimSuffix(s.RelImage, path.Ext(s.RelImage)) + ".npy"
	p := filepath.Join(out, results.MapsDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return npy.WriteFile(p, []int{size, size}, m)
}

// writeJSON writes v atomically (temporary file, then rename).
func writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p, append(b, '\n')); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

func nan() float64 { return math.NaN() }
