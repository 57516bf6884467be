package main

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
	"github.com/dapobench/dapobench/internal/parallel"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/metrics/mapio"
	"github.com/dapobench/dapobench/results"
)

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", stderr)
	var d datasetFlags
	d.register(fs)
	maps := fs.String("maps", "", "anomaly maps mirroring the dataset's image paths: MAPS/<image path without extension>"+
		" with extension "+strings.Join(mapio.Extensions, ", ")+" (float32 TIFF as the MVTec AD script reads, .npy, 8/16-bit PNG)")
	aupro := fs.String("aupro", string(metrics.AUPROCflow200), "AU-PRO variant: cflow200 (DAPO/AnomalyCLIP code) or mvtec (MVTec evaluation script)")
	scoresFile := fs.String("scores", "", "CSV of path,score image scores (path as in the dataset); default: the maximum of each map")
	out := fs.String("out", "results.json", "results file to write")
	scheme := fs.String("scheme", "external", "method name recorded in results.json")
	workers := fs.Int("workers", 0, "categories evaluated at once (0: one per CPU)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	resizeGT := fs.Bool("resize-gt", false, "resize each ground-truth mask to its (square) map's size, bilinear then > 0.5, as the CLIP pipelines evaluate at 518 px, instead of requiring maps at the ground-truth size (reads dapobench run --save-maps output)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "dataset", "root", "maps"); err != nil {
		return err
	}
	av, err := metrics.ParseAUPROVariant(*aupro)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if st, err := os.Stat(*maps); err != nil || !st.IsDir() {
		return fmt.Errorf("eval: maps directory %s: not a directory", *maps)
	}
	cfg := evalConfig{dataset: d.id, loader: d.options(), maps: *maps, aupro: av, scheme: *scheme,
		workers: *workers, allCategories: d.category == "", resizeGT: *resizeGT}
	if !*quiet {
		cfg.progress = stderr
	}
	if *scoresFile != "" {
		f, err := os.Open(*scoresFile)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		cfg.scores, err = mapio.ReadScores(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("eval: %s: %w", *scoresFile, err)
		}
		cfg.scoresName = *scoresFile
	}
	res, err := evalMaps(ctx, cfg)
	if err != nil {
		return err
	}
	if err := results.Write(*out, res); err != nil {
		return err
	}
	printResults(stdout, res)
	fmt.Fprintf(stdout, "\nwrote %s (AU-PRO %s)\n", *out, av)
	return nil
}

// evalConfig is one evaluation of external anomaly maps.
type evalConfig struct {
	dataset       string
	loader        loaders.Options
	maps          string
	aupro         metrics.AUPROVariant
	scheme        string
	scores        mapio.Scores // nil: image score = map maximum
	scoresName    string
	workers       int
	allCategories bool // check that the scores CSV names no other images
	resizeGT      bool // resize masks to the map size instead of requiring equal sizes
	progress      io.Writer
}

// evalMaps evaluates the maps of every test image, one category per core.
func evalMaps(ctx context.Context, cfg evalConfig) (*results.Results, error) {
	set, err := loaders.Load(ctx, cfg.dataset, cfg.loader)
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
		return nil, fmt.Errorf("eval: %s: no test images under %s", cfg.dataset, cfg.loader.Root)
	}
	if cfg.scores != nil && cfg.allCategories {
		if err := checkScorePaths(cfg, byCat); err != nil {
			return nil, err
		}
	}

	entries := make([]*results.Entry, len(cats))
	rounded := make([]int, len(cats))
	err = parallel.For(ctx, len(cats), cfg.workers, func(ctx context.Context, i int) error {
		start := time.Now()
		e, nr, err := evalCategory(ctx, cfg, byCat[cats[i]])
		if err != nil {
			return fmt.Errorf("eval: %s: %s: %w", cfg.dataset, cats[i], err)
		}
		entries[i], rounded[i] = e, nr
		if cfg.progress != nil {
			fmt.Fprintf(cfg.progress, "eval: %s: %d images in %.1fs\n", cats[i], len(byCat[cats[i]]), time.Since(start).Seconds())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	r := results.New(cfg.dataset, cfg.scheme, "")
	r.Settings["aupro"] = string(cfg.aupro)
	r.Settings["maps"] = cfg.maps
	r.Settings["image_score"] = "map maximum"
	if cfg.scores != nil {
		r.Settings["image_score"] = "scores CSV " + cfg.scoresName
	}
	if cfg.aupro == metrics.AUPROMVTec {
		r.Settings["pro_limit"] = fmt.Sprint(metrics.DefaultPROLimit)
	}
	total := 0
	for i, c := range cats {
		r.Categories[c] = entries[i]
		total += rounded[i]
	}
	if total > 0 {
		r.Settings["map_values"] = fmt.Sprintf("%d float64 maps rounded to float32", total)
	}
	r.ComputeMean()
	return r, nil
}

// checkScorePaths rejects a scores CSV that misses a test image or names
// an image that is not one.
func checkScorePaths(cfg evalConfig, byCat map[string][]loaders.Sample) error {
	known := map[string]bool{}
	for _, ss := range byCat {
		for _, s := range ss {
			known[s.RelImage] = true
		}
	}
	var extra []string
	for p := range cfg.scores {
		if !known[p] {
			extra = append(extra, p)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("eval: %s: %d paths are not test images of %s, e.g. %s",
			cfg.scoresName, len(extra), cfg.dataset, extra[0])
	}
	return nil
}

// evalCategory reads the maps and masks of one category and computes its
// metrics. It returns the number of maps rounded from float64.
func evalCategory(ctx context.Context, cfg evalConfig, samples []loaders.Sample) (*results.Entry, int, error) {
	pix, err := metrics.NewPixels(metrics.PixelOptions{})
	if err != nil {
		return nil, 0, err
	}
	var scores []float64
	var labels []bool
	var nNormal, nAnomalous, nRounded int
	var zeros []uint8
	for _, s := range samples {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		mp, m, err := readMap(cfg.maps, s.RelImage)
		if err != nil {
			return nil, 0, err
		}
		if m.Rounded {
			nRounded++
		}
		var mask []uint8
		if s.MaskPath != "" {
			gt, err := loaders.ReadMask(s.MaskPath)
			if err != nil {
				return nil, 0, fmt.Errorf("ground truth of %s: %w", s.RelImage, err)
			}
			switch {
			case cfg.resizeGT:
				if m.Width != m.Height {
					return nil, 0, fmt.Errorf("%s: map is %d×%d; --resize-gt needs square maps", mp, m.Width, m.Height)
				}
				mask = make([]uint8, m.Width*m.Height)
				if err := preprocess.OpenAI(m.Width).Mask(mask, gt.Pix, gt.Width, gt.Height); err != nil {
					return nil, 0, fmt.Errorf("ground truth %s: %w", s.RelMask, err)
				}
			case gt.Width != m.Width || gt.Height != m.Height:
				return nil, 0, fmt.Errorf("%s: map is %d×%d but the ground truth %s is %d×%d; maps must have the ground-truth size (or use --resize-gt)",
					mp, m.Width, m.Height, s.RelMask, gt.Width, gt.Height)
			default:
				mask = gt.Pix
			}
		} else {
			if s.Label == 1 {
				return nil, 0, fmt.Errorf("%s: anomalous image without a ground-truth mask", s.RelImage)
			}
			if !cfg.resizeGT && s.Width > 0 && (s.Width != m.Width || s.Height != m.Height) {
				return nil, 0, fmt.Errorf("%s: map is %d×%d but the image %s is %d×%d; maps must have the image size",
					mp, m.Width, m.Height, s.RelImage, s.Width, s.Height)
			}
			if cap(zeros) < len(m.Pix) {
				zeros = make([]uint8, len(m.Pix))
			}
			mask = zeros[:len(m.Pix)]
		}
		if err := pix.Add(m.Pix, mask, m.Width, m.Height); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", mp, err)
		}
		score := float64(maxOf(m.Pix))
		if cfg.scores != nil {
			v, ok := cfg.scores[s.RelImage]
			if !ok {
				return nil, 0, fmt.Errorf("%s has no score for %s", cfg.scoresName, s.RelImage)
			}
			score = v
		}
		scores = append(scores, score)
		labels = append(labels, s.Label == 1)
		if s.Label == 1 {
			nAnomalous++
		} else {
			nNormal++
		}
	}
	img, err := metrics.BinaryScores(scores, labels)
	if err != nil {
		return nil, 0, err
	}
	px, err := pix.Compute(ctx)
	if err != nil {
		return nil, 0, err
	}
	e := results.NewEntry()
	e.Set(results.ImageAUROC, img.AUROC)
	e.Set(results.ImageAP, img.AP)
	e.Set(results.ImageF1Max, img.F1Max)
	e.Set(results.PixelAUROC, px.AUROC)
	e.Set(results.PixelAP, px.AP)
	e.Set(results.PixelF1Max, px.F1Max)
	v, err := px.AUPRO(cfg.aupro)
	if err != nil {
		return nil, 0, err
	}
	e.Set(results.PixelAUPRO, v)
	e.Counts[results.NNormal] = nNormal
	e.Counts[results.NAnomalous] = nAnomalous
	return e, nRounded, nil
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
