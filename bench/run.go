package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/internal/parallel"
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
}

func metricOf(v metrics.Value) results.Metric {
	if !v.OK() {
		return results.Metric{Reason: v.Reason}
	}
	x := v.V + 0 // turns −0 (an integral over nothing) into 0
	return results.Metric{Value: &x}
}

func binaryOf(b metrics.Binary) results.Binary {
	return results.Binary{AUROC: metricOf(b.AUROC), AP: metricOf(b.AP), F1Max: metricOf(b.F1Max)}
}

// fingerprint identifies everything a category's numbers depend on, so
// that resuming never mixes results of different settings.
func fingerprint(cfg Config, c Category, samples []loaders.Sample) string {
	h := sha256.New()
	settings := cfg.Scheme.Settings()
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(h, "scheme %s\nmodel %s\naupro %s\ncategory %s\n", cfg.Scheme.Name(), cfg.Model.ImageHash, cfg.AUPRO, c.Name)
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, settings[k])
	}
	for _, s := range samples {
		fmt.Fprintf(h, "%s %s %d %s\n", s.RelImage, s.RelMask, s.Label, s.DefectType)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// Run evaluates the scheme on every category of the dataset's test split
// and returns the per-category results in category order. Categories
// whose record in Out/categories matches the current settings are read
// back instead of recomputed.
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
	var records []results.CategoryRecord
	for _, name := range set.Categories {
		samples := byCat[name]
		if len(samples) == 0 {
			return nil, fmt.Errorf("bench: %s: %s: no test samples", cfg.Dataset, name)
		}
		c := Category{Dataset: cfg.Dataset, Name: name, PromptName: samples[0].CategoryName}
		for _, s := range samples {
			if s.Label == 1 && !slices.Contains(c.DefectTypes, s.DefectType) {
				c.DefectTypes = append(c.DefectTypes, s.DefectType)
			}
		}
		sort.Strings(c.DefectTypes)
		fp := fingerprint(cfg, c, samples)
		recPath := filepath.Join(catDir, results.CategoryFile(name)+".json")
		if r, ok := readRecord(recPath, fp); ok {
			logf(cfg.Progress, "%s: %s: done earlier, read from %s", cfg.Scheme.Name(), name, recPath)
			records = append(records, r)
			continue
		}
		start := time.Now()
		c0, k0 := x.Computed, x.Cached
		r, err := runCategory(ctx, cfg, x, c, samples)
		if err != nil {
			return nil, err
		}
		r.Fingerprint = fp
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

func readRecord(p, fp string) (results.CategoryRecord, bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return results.CategoryRecord{}, false
	}
	var r results.CategoryRecord
	if json.Unmarshal(b, &r) != nil || r.Fingerprint != fp {
		return results.CategoryRecord{}, false
	}
	return r, true
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

// runCategory streams one category: batches are decoded one ahead of the
// image tower, images are scored in parallel, and the metric accumulators
// take them in sample order.
func runCategory(ctx context.Context, cfg Config, x *Extractor, c Category, samples []loaders.Sample) (results.CategoryRecord, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sc, err := cfg.Scheme.Prepare(ctx, cfg.Model, c)
	if err != nil {
		return results.CategoryRecord{}, err
	}
	if cl, ok := sc.(io.Closer); ok {
		defer cl.Close()
	}
	size := x.Spec().Size
	pix, err := metrics.NewPixels(metrics.PixelOptions{})
	if err != nil {
		return results.CategoryRecord{}, err
	}
	var mt *metrics.MultiType
	var ta *metrics.TypeAccuracy
	classes := sc.Classes()
	excluded := 0
	if classes != nil {
		if mt, err = metrics.NewMultiType(classes); err != nil {
			return results.CategoryRecord{}, err
		}
		if ta, err = metrics.NewTypeAccuracy(classes[1:]); err != nil {
			return results.CategoryRecord{}, err
		}
	}
	r := results.CategoryRecord{Category: c.Name}
	ex := newExamples()
	scores := make([]float64, 0, len(samples))
	labels := make([]bool, 0, len(samples))

	// Stage 1 runs ahead: hashing, cache reads, decoding, preprocessing.
	type prepared struct {
		b     *Batch
		start int
		err   error
	}
	ahead := make(chan prepared, 1)
	go func() {
		defer close(ahead)
		for start := 0; start < len(samples); start += cfg.Batch {
			end := min(start+cfg.Batch, len(samples))
			paths := make([]string, 0, end-start)
			for _, s := range samples[start:end] {
				paths = append(paths, s.ImagePath)
			}
			b, err := x.Prepare(ctx, paths)
			select {
			case ahead <- prepared{b, start, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	prog := NewProgress(cfg.Progress, len(samples), cfg.Scheme.Name()+" "+c.Name)
	for p := range ahead {
		if p.err != nil {
			return r, p.err
		}
		feats, err := x.Complete(ctx, p.b)
		if err != nil {
			return r, err
		}
		batch := samples[p.start : p.start+len(feats)]
		outs := make([]scored, len(batch))
		err = parallel.For(ctx, len(batch), cfg.Workers, func(ctx context.Context, i int) error {
			var err error
			outs[i], err = scoreOne(ctx, sc, feats[i], batch[i], x, size)
			return err
		})
		if err != nil {
			return r, err
		}
		for i, s := range batch {
			o := outs[i]
			if len(o.out.Map) != size*size {
				return r, fmt.Errorf("bench: %s: map has %d values, want %d×%d", s.RelImage, len(o.out.Map), size, size)
			}
			scores = append(scores, float64(o.out.Image))
			ex.offer(s, o.out)
			labels = append(labels, s.Label == 1)
			if s.Label == 1 {
				r.NAnomalous++
			} else {
				r.NNormal++
			}
			if err := pix.Add(o.out.Map, o.mask, size, size); err != nil {
				return r, fmt.Errorf("bench: %s: %w", s.RelImage, err)
			}
			if cfg.SaveMaps {
				if err := saveMap(cfg.Out, s, o.out.Map, size); err != nil {
					return r, err
				}
			}
			if mt == nil {
				continue
			}
			k := 0
			if s.Label == 1 {
				var ok bool
				if k, ok = sc.ClassOf(s.DefectType); !ok || k == 0 {
					excluded++
					continue
				}
			}
			truth := make([]uint8, size*size)
			for i, v := range o.mask {
				if v != 0 {
					truth[i] = uint8(k)
				}
			}
			if err := mt.Add(o.out.ClassMaps, truth, size, size); err != nil {
				return r, fmt.Errorf("bench: %s: %w", s.RelImage, err)
			}
			if s.Label == 1 && len(o.out.ClassScores) == len(classes) {
				if err := ta.Add(k-1, o.out.ClassScores[1:]); err != nil {
					return r, fmt.Errorf("bench: %s: %w", s.RelImage, err)
				}
			}
		}
		prog.Add(len(batch))
	}
	prog.Finish()
	if err := ctx.Err(); err != nil {
		return r, err
	}
	if err := writeScores(cfg.Out, c.Name, samples, scores); err != nil {
		return r, err
	}

	if err := ex.write(cfg.Out, c.Name, size); err != nil {
		return r, err
	}

	img, err := metrics.BinaryScores(scores, labels)
	if err != nil {
		return r, fmt.Errorf("bench: %s: image scores: %w", c.Name, err)
	}
	r.Image = binaryOf(img)
	pr, err := pix.Compute(ctx)
	if err != nil {
		return r, fmt.Errorf("bench: %s: %w", c.Name, err)
	}
	r.Pixel = binaryOf(pr.Binary)
	au, err := pr.AUPRO(cfg.AUPRO)
	if err != nil {
		return r, err
	}
	r.AUPRO = metricOf(au)
	if mt != nil {
		res, err := mt.Compute(ctx)
		if err != nil {
			return r, fmt.Errorf("bench: %s: %w", c.Name, err)
		}
		m := &results.MultiType{MacroAUROC: metricOf(res.MacroAUROC), MacroAP: metricOf(res.MacroAP), MacroF1: metricOf(res.MacroF1),
			Confusion: res.Confusion, Excluded: excluded}
		for _, cr := range res.Classes {
			m.Classes = append(m.Classes, results.ClassMetrics{Class: cr.Class, Pixels: cr.Pixels, AUROC: metricOf(cr.AUROC), AP: metricOf(cr.AP), F1: metricOf(cr.F1)})
		}
		m.TypeAccuracy = metricOf(ta.Result().Accuracy)
		r.MultiType = m
	}
	return r, nil
}

// scoreOne scores one image and resizes its mask to the evaluation size.
func scoreOne(ctx context.Context, sc Scorer, f Features, s loaders.Sample, x *Extractor, size int) (scored, error) {
	out, err := sc.Score(ctx, f)
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
