package resultsmd

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"

	"github.com/dapobench/dapobench/bench/preprocess"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/reports/figures"
	"github.com/dapobench/dapobench/reports/rundir"
	"github.com/dapobench/dapobench/results"
)

// kindText says what each kind of example shows.
var kindText = map[string]string{
	results.TopAnomalous:    "best-detected anomaly (highest-scored anomalous image)",
	results.BottomAnomalous: "worst-missed anomaly (lowest-scored anomalous image)",
	results.TopNormal:       "worst false alarm (highest-scored normal image)",
}

// example is one example of a category with its map, ready to draw.
type example struct {
	results.Example
	m []float32
}

// loadExamples reads a category's examples and maps and returns the value
// range they share, so that the three pictures use one colour scale.
func loadExamples(r *rundir.Run, category string) ([]example, float64, float64, error) {
	list, err := r.Examples(category)
	if err != nil {
		return nil, 0, 0, err
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	var out []example
	for _, e := range list {
		m, err := r.Map(e)
		if err != nil {
			return nil, 0, 0, err
		}
		for i, v := range m {
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, 0, 0, fmt.Errorf("resultsmd: %s: value %d of the map is %v", e.Map, i, v)
			}
			lo, hi = min(lo, f), max(hi, f)
		}
		out = append(out, example{e, m})
	}
	if len(out) > 0 && !(hi > lo) {
		hi = lo + 1 // a flat map: any range draws it in one colour
	}
	return out, lo, hi, nil
}

// drawExample draws one example's overlay into path. An image or mask file
// that no longer exists (a run made on another machine) is drawn without,
// and the returned note says so; a file that exists but cannot be read is
// an error.
func drawExample(e example, lo, hi float64, path string) (note string, err error) {
	o := figures.Overlay{Map: e.m, Size: e.Size, Min: lo, Max: hi}
	var notes []string
	img, err := preprocess.Decode(e.Image)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		notes = append(notes, "image not found at "+e.Image)
	case err != nil:
		return "", fmt.Errorf("resultsmd: example %s: %w", e.RelImage, err)
	default:
		o.Image = img
	}
	if e.Mask != "" {
		o.Mask, err = readMask(e.Mask, e.Size)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			notes = append(notes, "mask not found at "+e.Mask)
		case err != nil:
			return "", fmt.Errorf("resultsmd: example %s: %w", e.RelImage, err)
		}
	}
	pic, err := figures.DrawOverlay(o)
	if err != nil {
		return "", fmt.Errorf("resultsmd: example %s: %w", e.RelImage, err)
	}
	if err := figures.SavePNG(path, pic); err != nil {
		return "", err
	}
	return strings.Join(notes, "; "), nil
}

// readMask reads a ground-truth mask at the evaluation size, resized as
// the benchmark resized it (bench/preprocess Spec.Mask), so that the
// contour is the ground truth the metrics saw.
func readMask(path string, size int) ([]uint8, error) {
	m, err := loaders.ReadMask(path)
	if err != nil {
		return nil, err
	}
	out := make([]uint8, size*size)
	if err := preprocess.OpenAI(size).Mask(out, m.Pix, m.Width, m.Height); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
