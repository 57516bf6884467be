package bench

import (
	"io"

	"encoding/csv"
	"fmt"
	"github.com/dapobench/dapobench/internal/atomicfile"
	"os"
	"path/filepath"
	"strconv"

	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/loaders"
)

// Example kinds: the anomalous image the scheme finds most anomalous, the
// one it finds least anomalous (its worst miss), and the normal image it
// finds most anomalous (its worst false alarm). Reports draw their maps.
const (
	TopAnomalous    = "top-anomalous"
	BottomAnomalous = "bottom-anomalous"
	TopNormal       = "top-normal"
)

// Example is one kept sample with its anomaly map, as examples.json lists
// it; the map is examples/<category>/<kind>.npy.
type Example struct {
	Kind       string  `json:"kind"`
	Image      string  `json:"image"` // absolute path
	Mask       string  `json:"mask,omitempty"`
	RelImage   string  `json:"rel_image"`
	DefectType string  `json:"defect_type,omitempty"`
	Score      float32 `json:"score"`
	Map        string  `json:"map"` // run-relative path of the .npy map
	Size       int     `json:"size"`
}

// examples keeps, while a category streams by, the three examples and
// copies of their maps; memory stays at three maps.
type examples struct {
	kept map[string]*keptExample
}

type keptExample struct {
	s     loaders.Sample
	score float32
	m     []float32
}

func newExamples() *examples { return &examples{kept: map[string]*keptExample{}} }

func (e *examples) offer(s loaders.Sample, o *Output) {
	consider := func(kind string, better func(a, b float32) bool) {
		k := e.kept[kind]
		if k == nil || better(o.Image, k.score) {
			e.kept[kind] = &keptExample{s: s, score: o.Image, m: append([]float32(nil), o.Map...)}
		}
	}
	higher := func(a, b float32) bool { return a > b }
	lower := func(a, b float32) bool { return a < b }
	if s.Label == 1 {
		consider(TopAnomalous, higher)
		consider(BottomAnomalous, lower)
	} else {
		consider(TopNormal, higher)
	}
}

// write stores the maps under examples/<category>/ and their list in
// examples/<category>/examples.json.
func (e *examples) write(out, category string, size int) error {
	dir := filepath.Join(out, "examples", CategoryFile(category))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var list []Example
	for _, kind := range []string{TopAnomalous, BottomAnomalous, TopNormal} {
		k := e.kept[kind]
		if k == nil {
			continue
		}
		rel := filepath.ToSlash(filepath.Join("examples", CategoryFile(category), kind+".npy"))
		if err := npy.WriteFile(filepath.Join(out, filepath.FromSlash(rel)), []int{size, size}, k.m); err != nil {
			return err
		}
		list = append(list, Example{Kind: kind, Image: k.s.ImagePath, Mask: k.s.MaskPath, RelImage: k.s.RelImage,
			DefectType: k.s.DefectType, Score: k.score, Map: rel, Size: size})
	}
	return writeJSON(filepath.Join(dir, "examples.json"), list)
}

// ScoresHeader is the header of scores/<category>.csv.
var ScoresHeader = []string{"image", "label", "defect_type", "score"}

// writeScores writes the image scores of a category, one row per test
// image in sample order, to scores/<category>.csv: what ROC curves and
// paired tests between runs need.
func writeScores(out, category string, samples []loaders.Sample, scores []float64) error {
	dir := filepath.Join(out, "scores")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	p := filepath.Join(dir, CategoryFile(category)+".csv")
	err := atomicfile.Write(p, func(f io.Writer) error {
		w := csv.NewWriter(f)
		w.Write(ScoresHeader)
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

// ReadScores reads scores/<category>.csv of a run.
func ReadScores(run, category string) (images []string, labels []bool, defects []string, scores []float64, err error) {
	p := filepath.Join(run, "scores", CategoryFile(category)+".csv")
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = len(ScoresHeader)
	rows, err := r.ReadAll()
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("bench: %s: %w", p, err)
	}
	if len(rows) == 0 || fmt.Sprint(rows[0]) != fmt.Sprint(ScoresHeader) {
		return nil, nil, nil, nil, fmt.Errorf("bench: %s: header is not %v", p, ScoresHeader)
	}
	for i, row := range rows[1:] {
		v, err := strconv.ParseFloat(row[3], 64)
		if err != nil || (row[1] != "0" && row[1] != "1") {
			return nil, nil, nil, nil, fmt.Errorf("bench: %s:%d: bad row %q", p, i+2, row)
		}
		images = append(images, row[0])
		labels = append(labels, row[1] == "1")
		defects = append(defects, row[2])
		scores = append(scores, v)
	}
	return images, labels, defects, scores, nil
}

// writeMapScores writes maps/scores.csv, the "path,score" file that
// `dapobench eval --scores` reads, from the run's per-category scores, so
// that saved maps can be evaluated by the external-map path with the run's
// own image scores.
func writeMapScores(out string, categories []string) error {
	dir := filepath.Join(out, "maps")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	err := atomicfile.Write(filepath.Join(dir, "scores.csv"), func(f io.Writer) error {
		w := csv.NewWriter(f)
		w.Write([]string{"path", "score"})
		for _, c := range categories {
			images, _, _, scores, err := ReadScores(out, c)
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
