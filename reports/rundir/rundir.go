// Package rundir reads the run directories `dapobench run` writes and
// compares two of them image by image.
//
// A run directory holds results.json, manifest.json and, per category,
// scores/<category>.csv (the image scores), examples/<category>/ (the best
// and worst samples with their maps) and categories/<category>.json (the
// per-category record with the multi-type confusion matrix); Open refuses
// one that lacks any of them (results.CheckComplete). A part that is
// broken is an error naming the file; a part a run does not write (maps)
// is reported with an error matching fs.ErrNotExist, so that a report can
// leave its figure out. A lone results file (what `dapobench eval --out
// FILE` writes) opens as a run without parts.
package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/results"
)

// ResultsFile is the name of a run's results.
const ResultsFile = results.FileName

// Run is one run directory, or a lone results file.
type Run struct {
	Dir     string // the run directory; for a lone results file, its folder
	Path    string // the results file
	Results *results.Results
	// lone is set for a results file not named results.json (what
	// `dapobench eval --out FILE` writes): the files beside it belong to
	// no run, so the run has no scores, examples or records.
	lone bool
}

// Open reads the results of a run directory, or of a results file such as
// `dapobench eval` writes. A run directory must be complete
// (results.CheckComplete): one whose run was interrupted, or whose last
// writes failed, is refused with an error matching results.ErrIncomplete,
// and so is the results.json of such a directory given as a file.
func Open(path string) (*Run, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("rundir: %w", err)
	}
	run := &Run{Dir: path, Path: filepath.Join(path, ResultsFile)}
	if !fi.IsDir() {
		run.Dir, run.Path = filepath.Dir(path), path
		run.lone = filepath.Base(path) != ResultsFile
	}
	if !run.lone && (fi.IsDir() || isRunDir(run.Dir)) {
		if err := results.CheckComplete(run.Dir); err != nil {
			return nil, fmt.Errorf("rundir: %w", err)
		}
	}
	r, err := results.Read(run.Path)
	if err != nil {
		return nil, fmt.Errorf("rundir: %w", err)
	}
	if r.Dataset == "" {
		return nil, fmt.Errorf("rundir: %s: no dataset", run.Path)
	}
	run.Results = r
	return run, nil
}

// isRunDir tells a folder a run wrote (it has a manifest or category
// records) from one that merely holds a results.json `dapobench eval`
// wrote.
func isRunDir(dir string) bool {
	for _, p := range []string{results.ManifestName, results.CategoriesDir} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, fs.ErrNotExist) {
			return true
		}
	}
	return false
}

// errLone is the error of a part a lone results file does not have.
func (r *Run) errLone(part string) error {
	return fmt.Errorf("rundir: %s is a lone results file, without %s: %w", r.Path, part, fs.ErrNotExist)
}

// Label is how tables and figures name the run: its scheme (the variant
// name for variants), or else its directory or file name.
func (r *Run) Label() string {
	switch {
	case r.Results.Scheme != "":
		return r.Results.Scheme
	case r.lone:
		return strings.TrimSuffix(filepath.Base(r.Path), ".json")
	}
	return filepath.Base(filepath.Clean(r.Dir))
}

// Name is the run's directory name, or for a lone results file its file
// name: what tells apart two runs of the same scheme.
func (r *Run) Name() string {
	if r.lone {
		return filepath.Base(r.Path)
	}
	return filepath.Base(filepath.Clean(r.Dir))
}

// entry returns the results row of a category, or an error naming the run.
func (r *Run) entry(category string) (*results.Entry, error) {
	e := r.Results.Categories[category]
	if e == nil {
		return nil, fmt.Errorf("rundir: %s: no category %q", r.Path, category)
	}
	return e, nil
}

// Scores are the image scores of one category in the run's fixed order.
type Scores struct {
	Images  []string // dataset-relative paths
	Labels  []bool   // true: anomalous
	Defects []string // defect type; "" for normal images
	Values  []float64
}

// Scores reads scores/<category>.csv and checks it against the counts in
// results.json.
func (r *Run) Scores(category string) (*Scores, error) {
	e, err := r.entry(category)
	if err != nil {
		return nil, err
	}
	if r.lone {
		return nil, r.errLone("image scores")
	}
	p := filepath.Join(r.Dir, results.ScoresDir, results.CategoryFile(category)+".csv")
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("rundir: %w", err)
	}
	images, labels, defects, values, err := results.ReadScores(r.Dir, category)
	if err != nil {
		return nil, fmt.Errorf("rundir: %w", err)
	}
	pos := 0
	for _, l := range labels {
		if l {
			pos++
		}
	}
	nn, na := e.Counts[results.NNormal], e.Counts[results.NAnomalous]
	if len(labels)-pos != nn || pos != na {
		return nil, fmt.Errorf("rundir: %s: %d normal and %d anomalous images, but %s says %d and %d",
			p, len(labels)-pos, pos, r.Path, nn, na)
	}
	return &Scores{Images: images, Labels: labels, Defects: defects, Values: values}, nil
}

// Examples reads examples/<category>/examples.json: the most and least
// anomalous anomalous images and the most anomalous normal image, with
// their maps.
func (r *Run) Examples(category string) ([]results.Example, error) {
	if _, err := r.entry(category); err != nil {
		return nil, err
	}
	if r.lone {
		return nil, r.errLone("examples")
	}
	p := filepath.Join(r.Dir, results.ExamplesDir, results.CategoryFile(category), results.ExamplesFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("rundir: %w", err)
	}
	var ex []results.Example
	if err := json.Unmarshal(b, &ex); err != nil {
		return nil, fmt.Errorf("rundir: %s: %w", p, err)
	}
	for i, e := range ex {
		switch {
		case e.Kind != results.TopAnomalous && e.Kind != results.BottomAnomalous && e.Kind != results.TopNormal:
			return nil, fmt.Errorf("rundir: %s: example %d: unknown kind %q", p, i+1, e.Kind)
		case e.Size <= 0:
			return nil, fmt.Errorf("rundir: %s: example %d (%s): size %d", p, i+1, e.Kind, e.Size)
		case !filepath.IsLocal(filepath.FromSlash(e.Map)):
			return nil, fmt.Errorf("rundir: %s: example %d (%s): map %q is not a path inside the run", p, i+1, e.Kind, e.Map)
		}
	}
	return ex, nil
}

// Map reads an example's anomaly map, Size×Size values.
func (r *Run) Map(e results.Example) ([]float32, error) {
	p := filepath.Join(r.Dir, filepath.FromSlash(e.Map))
	a, err := npy.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("rundir: %w", err)
	}
	if len(a.Shape) != 2 || a.Shape[0] != e.Size || a.Shape[1] != e.Size {
		return nil, fmt.Errorf("rundir: %s: shape %v, want [%d %d]", p, a.Shape, e.Size, e.Size)
	}
	return a.Data, nil
}

// Record reads categories/<category>.json, the per-category record with
// the multi-type results.
func (r *Run) Record(category string) (*results.CategoryRecord, error) {
	if _, err := r.entry(category); err != nil {
		return nil, err
	}
	if r.lone {
		return nil, r.errLone("category records")
	}
	p := filepath.Join(r.Dir, results.CategoriesDir, results.CategoryFile(category)+".json")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("rundir: %w", err)
	}
	var c results.CategoryRecord
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("rundir: %s: %w", p, err)
	}
	if c.Category != category {
		return nil, fmt.Errorf("rundir: %s: record of category %q, want %q", p, c.Category, category)
	}
	if mt := c.MultiType; mt != nil {
		n := len(mt.Classes)
		if len(mt.Confusion) != n {
			return nil, fmt.Errorf("rundir: %s: confusion matrix has %d rows for %d classes", p, len(mt.Confusion), n)
		}
		for i, row := range mt.Confusion {
			if len(row) != n {
				return nil, fmt.Errorf("rundir: %s: confusion row %d has %d columns for %d classes", p, i, len(row), n)
			}
		}
	}
	return &c, nil
}
