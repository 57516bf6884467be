package multiads

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/dapobench/dapobench/baselines/internal/vand"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/postproc"
	"github.com/dapobench/dapobench/dapo"
	"github.com/dapobench/dapobench/loaders"
)

// promptsJSON holds every prompt ensemble of MultiADS' prompts/*.py and
// the tables of test.py, test_multi_defect.py, train.py and dataset.py
// that the scheme reads, written from the official code by
// testdata/reference.py (docs/methods.md#multiads-prompts).
//
//go:embed prompts.json
var promptsJSON []byte

// Tables are the contents of prompts.json, keyed by dapobench dataset id.
type Tables struct {
	// Files are the ensembles by prompt module (prompt_ensemble_mvtec_20cls …).
	Files map[string]vand.Ensemble `json:"files"`
	// Test, Multi and Train name the module test.py, test_multi_defect.py
	// and train.py import for each dataset.
	Test  map[string]string `json:"test"`
	Multi map[string]string `json:"multi"`
	Train map[string]string `json:"train"`
	// Defects is get_dataset_meta's global defect list of each dataset
	// (normal first), PerObject its per-category lists
	// (product_type2defect_type_*), Specie2ID the dataset.py tables that
	// turn a defect folder into an index of Defects, TrainGT train.py's
	// gt_defect (defect folder → training class).
	Defects   map[string][]string            `json:"defects"`
	PerObject map[string]map[string][]string `json:"per_object"`
	Specie2ID map[string]map[string]int      `json:"specie2id"`
	TrainGT   map[string]map[string]int      `json:"train_gt_defect"`
}

var tables = sync.OnceValues(func() (*Tables, error) {
	var t Tables
	if err := json.Unmarshal(promptsJSON, &t); err != nil {
		return nil, fmt.Errorf("multiads: prompts.json: %w", err)
	}
	for name, e := range t.Files {
		if err := e.Check(); err != nil {
			return nil, fmt.Errorf("multiads: prompts.json: %s: %w", name, err)
		}
	}
	for _, m := range []map[string]string{t.Test, t.Multi, t.Train} {
		for ds, f := range m {
			if _, ok := t.Files[f]; !ok {
				return nil, fmt.Errorf("multiads: prompts.json: %s names ensemble %q, which is not listed", ds, f)
			}
		}
	}
	for ds, f := range t.Multi {
		if n, d := len(t.Files[f].Groups), len(t.Defects[ds]); n != d {
			return nil, fmt.Errorf("multiads: prompts.json: %s: multi-type ensemble %s has %d groups for %d defect names", ds, f, n, d)
		}
	}
	return &t, nil
})

// ReadTables returns the official tables.
func ReadTables() (*Tables, error) { return tables() }

// TestEnsemble is the ensemble test.py encodes for a dataset.
func (t *Tables) TestEnsemble(dataset string) (vand.Ensemble, string, error) {
	f, ok := t.Test[dataset]
	if !ok {
		return vand.Ensemble{}, "", fmt.Errorf("multiads: no prompt ensemble for dataset %q (test.py has %s)", dataset, strings.Join(slices.Sorted(maps.Keys(t.Test)), ", "))
	}
	return t.Files[f], f, nil
}

// Local is a category's multi-type classes (its product_type2defect_type
// list, normal first) and the index of each in the dataset's global defect
// list, which test_multi_defect.py uses as the column of the class vectors
// (docs/methods.md#multiads-multitype). ok is false for a category without
// a list.
func (t *Tables) Local(dataset, category string) (classes []string, columns []int, ok bool, err error) {
	classes, ok = t.PerObject[dataset][category]
	if !ok {
		return nil, nil, false, nil
	}
	for _, c := range classes {
		i := slices.Index(t.Defects[dataset], c)
		if i < 0 {
			return nil, nil, false, fmt.Errorf("multiads: %s: class %q of %s is not in the dataset's defect list", dataset, c, category)
		}
		columns = append(columns, i)
	}
	return classes, columns, true, nil
}

// DefectName is the global defect name a sample's raw defect type gets in
// the official type masks: its dataset.py SPECIE2ID index into
// get_dataset_meta's list (docs/methods.md#multiads-multitype). VisA's
// free-text descriptions are first reduced to their class word
// (dapo.VisAClass), Real-IAD's codes to the first word of their name.
func (t *Tables) DefectName(dataset, defect string) (string, bool) {
	key := defect
	switch dataset {
	case loaders.VisA:
		w, ok := dapo.VisAClass(defect)
		if !ok {
			return "", false
		}
		key = w
	case loaders.RealIAD:
		n, ok := loaders.RealIADDefectName(defect)
		if !ok {
			return "", false
		}
		key, _, _ = strings.Cut(n, " ")
	}
	id, ok := t.Specie2ID[dataset][key]
	if !ok || id < 0 || id >= len(t.Defects[dataset]) {
		return "", false
	}
	return t.Defects[dataset][id], true
}

// TrainDatasets are the datasets MultiADS' train.py can train on at
// 66900bb: MVTec-AD alone. Its VisA branch imports VisaDatasetV2, which
// dataset.py comments out, its MPDD branch passes MPDDDataset arguments
// it does not take, and real_iad is refused by its assert
// (docs/methods.md#train-multiads-recipe).
var TrainDatasets = []string{loaders.MVTec}

// TrainClasses is the number of classes of the training ensemble of a
// dataset, and TrainGT its defect folder → class table (train.py's
// gt_defect).
func (t *Tables) TrainClasses(dataset string) (int, map[string]int, error) {
	if !slices.Contains(TrainDatasets, dataset) {
		return 0, nil, fmt.Errorf("multiads: the official train.py cannot train on %q at this commit; it trains on %s", dataset, strings.Join(TrainDatasets, ", "))
	}
	f, ok := t.Train[dataset]
	gt := t.TrainGT[dataset]
	if !ok || gt == nil {
		return 0, nil, fmt.Errorf("multiads: no training ensemble or gt_defect table for %q", dataset)
	}
	return len(t.Files[f].Groups), gt, nil
}

// TrainClassVectors are the unit class vectors of an object for training
// on a dataset: the ensemble train.py imports for it.
func TrainClassVectors(ctx context.Context, m *bench.Model, dataset, obj string) (postproc.Mat, error) {
	t, err := ReadTables()
	if err != nil {
		return postproc.Mat{}, err
	}
	if _, _, err := t.TrainClasses(dataset); err != nil {
		return postproc.Mat{}, err
	}
	v, err := vand.Encode(ctx, m, t.Files[t.Train[dataset]], obj)
	if err != nil {
		return postproc.Mat{}, fmt.Errorf("multiads: %s: %w", obj, err)
	}
	return v, nil
}
