package bench

import (
	"io"

	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/dapobench/dapobench/internal/atomicfile"
	"github.com/dapobench/dapobench/results"

	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/loaders"
)

// examples keeps, while a category streams by, the three examples and
// copies of their maps; memory stays at three maps.
type examples struct {
	kept map[string]*keptExample
	n    int // images offered so far
}

type keptExample struct {
	s     loaders.Sample
	i     int // position in the category
	score float32
	m     []float32
}

func newExamples() *examples { return &examples{kept: map[string]*keptExample{}} }

func (e *examples) offer(s loaders.Sample, o *Output) {
	i := e.n
	e.n++
	consider := func(kind string, better func(a, b float32) bool) {
		k := e.kept[kind]
		if k == nil || better(o.Image, k.score) {
			e.kept[kind] = &keptExample{s: s, i: i, score: o.Image, m: append([]float32(nil), o.Map...)}
		}
	}
	higher := func(a, b float32) bool { return a > b }
	lower := func(a, b float32) bool { return a < b }
	if s.Label == 1 {
		consider(results.TopAnomalous, higher)
		consider(results.BottomAnomalous, lower)
	} else {
		consider(results.TopNormal, higher)
	}
}

// rescore gives the kept examples their final scores (ScoreFinisher),
// final[i] being the score of the i-th image offered.
func (e *examples) rescore(final []float64) {
	for _, k := range e.kept {
		if k.i < len(final) {
			k.score = float32(final[k.i])
		}
	}
}

// write stores the maps under examples/<category>/ and their list in
// examples/<category>/examples.json.
func (e *examples) write(out, category string, size int) error {
	dir := filepath.Join(out, results.ExamplesDir, results.CategoryFile(category))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var list []results.Example
	for _, kind := range []string{results.TopAnomalous, results.BottomAnomalous, results.TopNormal} {
		k := e.kept[kind]
		if k == nil {
			continue
		}
		rel := filepath.ToSlash(filepath.Join(results.ExamplesDir, results.CategoryFile(category), kind+".npy"))
		if err := npy.WriteFile(filepath.Join(out, filepath.FromSlash(rel)), []int{size, size}, k.m); err != nil {
			return err
		}
		list = append(list, results.Example{Kind: kind, Image: k.s.ImagePath, Mask: k.s.MaskPath, RelImage: k.s.RelImage,
			DefectType: k.s.DefectType, Score: k.score, Map: rel, Size: size})
	}
	return writeJSON(filepath.Join(dir, results.ExamplesFile), list)
}

// writeScores writes the image scores of a category, one row per test
// image in sample order, to scores/<category>.csv: what ROC curves and
// paired tests between runs need.
func writeScores(out, category string, samples []loaders.Sample, scores []float64) error {
	dir := filepath.Join(out, results.ScoresDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	p := filepath.Join(dir, results.CategoryFile(category)+".csv")
	err := atomicfile.Write(p, func(f io.Writer) error {
		w := csv.NewWriter(f)
		w.Write(results.ScoresHeader)
		for i, s := range samples {
			w.Write([]string{s.RelImage, strconv.Itoa(s.Label), s.DefectType, strconv.FormatFloat(scores[i], 'g', -1, 64)})
		}
		w.Flush()
		return w.Error()
	})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// writeMapScores writes maps/scores.csv, the "path,score" file that
// `dapobench eval --scores` reads, from the run's per-category scores, so
// that saved maps can be evaluated by the external-map path with the run's
// own image scores.
func writeMapScores(out string, categories []string) error {
	dir := filepath.Join(out, results.MapsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	err := atomicfile.Write(filepath.Join(dir, "scores.csv"), func(f io.Writer) error {
		w := csv.NewWriter(f)
		w.Write([]string{"path", "score"})
		for _, c := range categories {
			images, _, _, scores, err := results.ReadScores(out, c)
			if err != nil {
				return err
			}
			for i, p := range images {
				w.Write([]string{p, strconv.FormatFloat(scores[i], 'g', -1, 64)})
			}
		}
		w.Flush()
		return w.Error()
	})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
