// Package dapo is the DAPO scheme (arXiv 2512.09446) as its official code
// implements it: hybrid prompts with learned context shared across defect
// words, fixed anchors "anomaly"/"object", literal defect words so that
// unseen defect types get a prompt at test time, and multi-type
// segmentation. docs/methods.md#dapo-overview is the specification.
package dapo

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

//go:embed vocabularies.json
var vocabJSON []byte

// Vocabularies are the defect word lists of the official code
// (docs/methods.md#dapo-vocab-binary, docs/methods.md#dapo-vocab-train,
// docs/methods.md#dapo-vocab-multitype), verbatim.
type Vocabularies struct {
	NormalWord string `json:"normal_prompt_word"`
	// Train is the training vocabulary per training dataset (MVTec, 20
	// words in gt_defect id order 1..20).
	Train map[string][]string `json:"train"`
	// TrainGT maps a training dataset's defect folder to its 1-based class
	// index in Train.
	TrainGT map[string]map[string]int `json:"train_gt_defect"`
	// Binary is the test-time abnormal vocabulary per dataset (test.py).
	Binary map[string][]string `json:"binary"`
	// Multi is the multi-type vocabulary per dataset; index 0 is normal.
	Multi map[string][]string `json:"multi"`
	// MultiGT maps a dataset's defect folder or code to its index in Multi.
	MultiGT map[string]map[string]int `json:"multi_gt_defect"`
	// PerObject restricts Multi to each category's defect list (first entry
	// normal); "*" applies to every category of the dataset.
	PerObject map[string]map[string][]string `json:"per_object"`
}

var (
	vocabOnce sync.Once
	vocab     *Vocabularies
	vocabErr  error
)

// DefaultVocabularies returns the embedded vocabularies. The result is
// shared: do not modify it.
func DefaultVocabularies() (*Vocabularies, error) {
	vocabOnce.Do(func() {
		var v Vocabularies
		if err := json.Unmarshal(vocabJSON, &v); err != nil {
			vocabErr = fmt.Errorf("dapo: embedded vocabularies: %w", err)
			return
		}
		if err := v.validate(); err != nil {
			vocabErr = fmt.Errorf("dapo: embedded vocabularies: %w", err)
			return
		}
		vocab = &v
	})
	return vocab, vocabErr
}

// validate checks that every index map points into its list and that every
// per-object list is a subset of the dataset's multi-type list.
func (v *Vocabularies) validate() error {
	for ds, m := range v.MultiGT {
		words := v.Multi[ds]
		for k, i := range m {
			if i < 0 || i >= len(words) {
				return fmt.Errorf("multi_gt_defect.%s.%s = %d outside %d words", ds, k, i, len(words))
			}
		}
	}
	for ds, m := range v.TrainGT {
		for k, i := range m {
			if i < 1 || i > len(v.Train[ds]) {
				return fmt.Errorf("train_gt_defect.%s.%s = %d outside 1..%d", ds, k, i, len(v.Train[ds]))
			}
		}
	}
	for ds, objs := range v.PerObject {
		for obj, words := range objs {
			for _, w := range words {
				if !slices.Contains(v.Multi[ds], w) {
					return fmt.Errorf("per_object.%s.%s: %q is not in multi.%s", ds, obj, w, ds)
				}
			}
		}
	}
	return nil
}

// ObjectClasses returns a category's multi-type classes (normal first) and
// their indices in the dataset's multi-type list.
func (v *Vocabularies) ObjectClasses(dataset, category string) ([]string, []int, error) {
	objs, ok := v.PerObject[dataset]
	if !ok {
		return nil, nil, fmt.Errorf("dapo: no multi-type vocabulary for dataset %q", dataset)
	}
	words, ok := objs[category]
	if !ok {
		words, ok = objs["*"]
	}
	if !ok {
		names := make([]string, 0, len(objs))
		for k := range objs {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, nil, fmt.Errorf("dapo: no defect list for %s category %q (have %s)", dataset, category, strings.Join(names, ", "))
	}
	idx := make([]int, len(words))
	for i, w := range words {
		idx[i] = slices.Index(v.Multi[dataset], w)
	}
	return words, idx, nil
}
