package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dapobench/dapobench/bench/preprocess"
	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/internal/parallel"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/metrics/mapio"
	"github.com/dapobench/dapobench/results"
)

// EvalConfig is one evaluation of anomaly maps produced elsewhere (by any
// method, or saved by a run), laid out like the dataset's images.
type EvalConfig struct {
	Dataset string
	Loader  loaders.Options
	// Maps mirrors the dataset's relative image paths with a map
	// extension (mapio.Extensions).
	Maps  string
	AUPRO metrics.AUPROVariant
	// Scheme is the method name recorded in results.json.
	Scheme string
	// Scores are the image scores by relative path; nil takes each map's
	// maximum. ScoresName names their file in messages and settings.
	Scores     mapio.Scores
	ScoresName string
	// AllCategories makes a scores file that names images outside the
	// dataset's test split an error (off when one category is chosen).
	AllCategories bool
	// ResizeGT resizes each ground-truth mask to its (square) map's size,
	// bilinear then > 0.5, as the CLIP pipelines evaluate; otherwise maps
	// must have the ground truth's size.
	ResizeGT bool
	// Workers evaluate categories in parallel (0: GOMAXPROCS).
	Workers int
	// Progress receives one line per category; nil is silent.
	Progress io.Writer
}

// Evaluate scores external maps against the dataset's ground truth, one
// category per core, with the same per-category computation as Run. Where
// the maps folder holds a run's class maps (results.ClassIndex), the
// multi-type metrics are computed from them too.
func Evaluate(ctx context.Context, cfg EvalConfig) (*results.Results, error) {
	set, err := loaders.Load(ctx, cfg.Dataset, cfg.Loader)
	if err != nil {
		return nil, err
	}
	byCat := map[string][]loaders.Sample{}
	for _, s := range set.Samples {
		if s.Split == loaders.Test {
			byCat[s.Category] = append(byCat[s.Category], s)
		}
	}
	var cats []string
	for _, c := range set.Categories {
		if len(byCat[c]) > 0 {
			cats = append(cats, c)
		}
	}
	if len(cats) == 0 {
		return nil, fmt.Errorf("eval: %s: no test images under %s", cfg.Dataset, cfg.Loader.Root)
	}
	if cfg.Scores != nil && cfg.AllCategories {
		if err := checkScorePaths(cfg, byCat); err != nil {
			return nil, err
		}
	}

	recs := make([]results.CategoryRecord, len(cats))
	rounded := make([]int, len(cats))
	seen := make([]*results.ClassIndex, len(cats))
	err = parallel.For(ctx, len(cats), cfg.Workers, func(ctx context.Context, i int) error {
		start := time.Now()
		rec, idx, nr, err := evalCategory(ctx, cfg, cats[i], byCat[cats[i]])
		if err != nil {
			return fmt.Errorf("eval: %s: %s: %w", cfg.Dataset, cats[i], err)
		}
		recs[i], seen[i], rounded[i] = rec, idx, nr
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "eval: %s: %d images in %.1fs\n", cats[i], len(byCat[cats[i]]), time.Since(start).Seconds())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	settings := map[string]string{"aupro": string(cfg.AUPRO), "maps": cfg.Maps, "image_score": "map maximum"}
	if cfg.Scores != nil {
		settings["image_score"] = "scores CSV " + cfg.ScoresName
	}
	if cfg.AUPRO == metrics.AUPROMVTec {
		settings["pro_limit"] = fmt.Sprint(metrics.DefaultPROLimit)
	}
	total := 0
	for _, n := range rounded {
		total += n
	}
	if total > 0 {
		settings["map_values"] = fmt.Sprintf("%d float64 maps rounded to float32", total)
	}
	voc := savedVocabulary{}
	hasVoc := false
	for _, idx := range seen {
		if idx != nil && idx.Vocabulary {
			hasVoc = true
			for _, c := range idx.Seen {
				voc[c] = true
			}
		}
	}
	var v Vocabulary
	if hasVoc {
		settings["class_maps"] = "saved by the run, with its training vocabulary"
		v = voc
	}
	return Summarise(cfg.Dataset, cfg.Scheme, "", settings, v, recs), nil
}

// savedVocabulary is the seen classes a run recorded with its class maps.
type savedVocabulary map[string]bool

func (v savedVocabulary) Seen(word string) bool { return v[word] }

// checkScorePaths rejects a scores CSV that names an image that is not a
// test image of the dataset.
func checkScorePaths(cfg EvalConfig, byCat map[string][]loaders.Sample) error {
	known := map[string]bool{}
	for _, ss := range byCat {
		for _, s := range ss {
			known[s.RelImage] = true
		}
	}
	var extra []string
	for p := range cfg.Scores {
		if !known[p] {
			extra = append(extra, p)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("eval: %s: %d paths are not test images of %s, e.g. %s",
			cfg.ScoresName, len(extra), cfg.Dataset, extra[0])
	}
	return nil
}

// evalCategory reads the maps (and class maps, where saved) and masks of
// one category and computes its record. It returns the number of maps
// rounded from float64.
func evalCategory(ctx context.Context, cfg EvalConfig, name string, samples []loaders.Sample) (results.CategoryRecord, *results.ClassIndex, int, error) {
	idx, multi, err := readClassIndex(cfg.Maps, name)
	if err != nil {
		return results.CategoryRecord{}, nil, 0, err
	}
	var classes []string
	var classOf func(string) (int, bool)
	if multi {
		classes = idx.Classes
		classOf = func(t string) (int, bool) { k, ok := idx.DefectTypes[t]; return k, ok }
	} else {
		idx = nil
	}
	t, err := newTally(name, classes, classOf)
	if err != nil {
		return results.CategoryRecord{}, nil, 0, err
	}
	nRounded := 0
	var zeros []uint8
	for _, s := range samples {
		if err := ctx.Err(); err != nil {
			return results.CategoryRecord{}, nil, 0, err
		}
		mp, m, err := readMap(cfg.Maps, s.RelImage)
		if err != nil {
			return results.CategoryRecord{}, nil, 0, err
		}
		if m.Rounded {
			nRounded++
		}
		var mask []uint8
		if s.MaskPath != "" {
			gt, err := loaders.ReadMask(s.MaskPath)
			if err != nil {
				return results.CategoryRecord{}, nil, 0, fmt.Errorf("ground truth of %s: %w", s.RelImage, err)
			}
			switch {
			case cfg.ResizeGT:
				if m.Width != m.Height {
					return results.CategoryRecord{}, nil, 0, fmt.Errorf("%s: map is %d×%d; --resize-gt needs square maps", mp, m.Width, m.Height)
				}
				mask = make([]uint8, m.Width*m.Height)
				if err := preprocess.OpenAI(m.Width).Mask(mask, gt.Pix, gt.Width, gt.Height); err != nil {
					return results.CategoryRecord{}, nil, 0, fmt.Errorf("ground truth %s: %w", s.RelMask, err)
				}
			case gt.Width != m.Width || gt.Height != m.Height:
				return results.CategoryRecord{}, nil, 0, fmt.Errorf("%s: map is %d×%d but the ground truth %s is %d×%d; maps must have the ground-truth size (or use --resize-gt)",
					mp, m.Width, m.Height, s.RelMask, gt.Width, gt.Height)
			default:
				mask = gt.Pix
			}
		} else {
			if s.Label == 1 {
				return results.CategoryRecord{}, nil, 0, fmt.Errorf("%s: anomalous image without a ground-truth mask", s.RelImage)
			}
			if !cfg.ResizeGT && s.Width > 0 && (s.Width != m.Width || s.Height != m.Height) {
				return results.CategoryRecord{}, nil, 0, fmt.Errorf("%s: map is %d×%d but the image %s is %d×%d; maps must have the image size",
					mp, m.Width, m.Height, s.RelImage, s.Width, s.Height)
			}
			if cap(zeros) < len(m.Pix) {
				zeros = make([]uint8, len(m.Pix))
			}
			mask = zeros[:len(m.Pix)]
		}
		score := float64(maxOf(m.Pix))
		if cfg.Scores != nil {
			v, ok := cfg.Scores[s.RelImage]
			if !ok {
				return results.CategoryRecord{}, nil, 0, fmt.Errorf("%s has no score for %s", cfg.ScoresName, s.RelImage)
			}
			score = v
		}
		var classMaps [][]float32
		var classScores []float64
		if multi {
			if classMaps, err = readClassMaps(cfg.Maps, s.RelImage, len(classes), m.Width, m.Height); err != nil {
				return results.CategoryRecord{}, nil, 0, err
			}
			classScores = idx.ClassScores[s.RelImage]
		}
		if err := t.add(s, score, m.Pix, mask, m.Width, m.Height, classMaps, classScores); err != nil {
			return results.CategoryRecord{}, nil, 0, fmt.Errorf("%s: %w", mp, err)
		}
	}
	rec, err := t.record(ctx, cfg.AUPRO)
	return rec, idx, nRounded, err
}

// readClassMaps reads the [C, H, W] class maps saved beside an image's map.
func readClassMaps(dir, rel string, c, w, h int) ([][]float32, error) {
	p := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(rel, path.Ext(rel))+results.ClassMapsExt))
	a, err := npy.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if len(a.Shape) != 3 || a.Shape[0] != c || a.Shape[1] != h || a.Shape[2] != w {
		return nil, fmt.Errorf("%s: class maps of shape %v, want [%d %d %d] (classes, height, width)", p, a.Shape, c, h, w)
	}
	out := make([][]float32, c)
	for i := range out {
		out[i] = a.Data[i*w*h : (i+1)*w*h]
	}
	return out, nil
}

// readMap finds and reads the map of the image at rel: exactly one of
// MAPS/<rel without extension><ext> must exist for the map extensions.
func readMap(dir, rel string) (string, *mapio.Map, error) {
	stem := strings.TrimSuffix(rel, path.Ext(rel))
	var found []string
	var tried []string
	for _, ext := range mapio.Extensions {
		for _, e := range []string{ext, strings.ToUpper(ext)} {
			p := filepath.Join(dir, filepath.FromSlash(stem+e))
			tried = append(tried, e)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				found = append(found, p)
			}
		}
	}
	switch len(found) {
	case 0:
		return "", nil, fmt.Errorf("no map for %s: expected %s with extension %s",
			rel, filepath.Join(dir, filepath.FromSlash(stem)), strings.Join(tried, ", "))
	case 1:
	default:
		if !sameFiles(found) {
			return "", nil, fmt.Errorf("several maps for %s: %s; keep one", rel, strings.Join(found, ", "))
		}
	}
	m, err := mapio.ReadFile(found[0])
	if err != nil {
		return "", nil, err
	}
	return found[0], m, nil
}

// sameFiles reports whether the paths name one file (a case-insensitive
// file system finds "x.tif" and "x.TIF" both).
func sameFiles(ps []string) bool {
	a, err := os.Stat(ps[0])
	if err != nil {
		return false
	}
	for _, p := range ps[1:] {
		b, err := os.Stat(p)
		if err != nil || !os.SameFile(a, b) {
			return false
		}
	}
	return true
}

func maxOf(xs []float32) float32 {
	m := float32(math.Inf(-1))
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
