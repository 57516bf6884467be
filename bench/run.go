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
	"time"

	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/internal/parallel"
	"github.com/dapobench/dapobench/internal/progress"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/results"

	"github.com/dapobench/dapobench/internal/atomicfile"
)

// DefaultBatch is the number of images per image-tower run.
const DefaultBatch = 8

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
	AUPRO    metrics.AUPROVariant
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
		cfg.Batch = DefaultBatch
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
	var records []results.CategoryRecord
	first := 0 // run-order index of the category's first sample
	for _, name := range set.Categories {
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
			records = append(records, r)
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
		start := time.Now()
		c0, k0 := x.Computed, x.Cached
		r, positional, err := runCategory(ctx, cfg, x, c, samples, content.images, cFirst)
		if err != nil {
			return nil, err
		}
		if positional {
			inputs[positionInput] = strconv.Itoa(cFirst)
		}
		r.Fingerprint, r.Config, r.Inputs = fingerprint(name, config, inputs), config, inputs
		r.Seconds = time.Since(start).Seconds()
		r.Computed, r.Cached = x.Computed-c0, x.Cached-k0
		if err := writeJSON(recPath, r); err != nil {
			return nil, err
		}
		records = append(records, r)
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

// ahead is a batch whose inputs were prepared ahead of the image tower.
type ahead struct {
	b     *Batch
	start int // index of its first sample
	err   error
}

// runCategory streams one category through four stages: batches are
// decoded one ahead of the image tower (prefetch), the tower runs and the
// images of a batch are scored in parallel (scoreBatch), the outputs are
// taken in sample order (collect), and the category's files and metrics
// are written at the end (finish).
func runCategory(ctx context.Context, cfg Config, x *Extractor, c Category, samples []loaders.Sample, contents []string, first int) (rec results.CategoryRecord, positional bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sc, err := cfg.Scheme.Prepare(ctx, cfg.Model, c)
	if err != nil {
		return results.CategoryRecord{}, false, err
	}
	if cl, ok := sc.(io.Closer); ok {
		defer cl.Close()
	}
	t, err := newTally(c.Name, sc.Classes(), sc.ClassOf)
	if err != nil {
		return results.CategoryRecord{}, false, err
	}
	col := &collector{cfg: cfg, size: x.Spec().Size, t: t, ex: newExamples(), classes: sc.Classes()}
	col.finisher, _ = sc.(ScoreFinisher)
	prog := progress.New(cfg.Progress, len(samples), cfg.Scheme.Name()+" "+c.Name)
	for p := range prefetch(ctx, x, samples, contents, cfg.Batch) {
		if p.err != nil {
			return results.CategoryRecord{}, false, p.err
		}
		batch, outs, err := scoreBatch(ctx, cfg, x, sc, samples, p, first)
		if err != nil {
			return results.CategoryRecord{}, false, err
		}
		for i, s := range batch {
			if err := col.collect(s, outs[i]); err != nil {
				return results.CategoryRecord{}, false, err
			}
		}
		prog.Add(len(batch))
	}
	prog.Finish()
	if err := ctx.Err(); err != nil {
		return results.CategoryRecord{}, false, err
	}
	_, positional = sc.(PositionScorer)
	rec, err = col.finish(ctx, c.Name, samples)
	return rec, positional, err
}

// prefetch reads the cache for, decodes and preprocesses the batches of a
// category, one batch ahead of the consumer; contents are the images'
// sha256, the cache keys.
func prefetch(ctx context.Context, x *Extractor, samples []loaders.Sample, contents []string, size int) <-chan ahead {
	ch := make(chan ahead, 1)
	go func() {
		defer close(ch)
		for start := 0; start < len(samples); start += size {
			end := min(start+size, len(samples))
			paths := make([]string, 0, end-start)
			for _, s := range samples[start:end] {
				paths = append(paths, s.ImagePath)
			}
			b, err := x.PrepareHashed(ctx, paths, contents[start:end])
			select {
			case ch <- ahead{b, start, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// scoreBatch completes a prepared batch (the image tower for cache misses)
// and scores its images in parallel; first is the run-order index of the
// category's first sample (PositionScorer).
func scoreBatch(ctx context.Context, cfg Config, x *Extractor, sc Scorer, samples []loaders.Sample, p ahead, first int) ([]loaders.Sample, []scored, error) {
	feats, err := x.Complete(ctx, p.b)
	if err != nil {
		return nil, nil, err
	}
	batch := samples[p.start : p.start+len(feats)]
	outs := make([]scored, len(batch))
	size := x.Spec().Size
	err = parallel.For(ctx, len(batch), cfg.Workers, func(ctx context.Context, i int) error {
		var err error
		outs[i], err = scoreOne(ctx, sc, first+p.start+i, feats[i], batch[i], x, size)
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
