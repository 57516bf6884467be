package metrics

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// MultiType evaluates a multi-class segmentation of one category as DAPO's
// multi-defect test script does (docs/evaluation.md#metric-multitype): each pixel has one score per
// class of the category's list (index 0 is the normal class) and one
// ground-truth class. Per class it computes the one-vs-rest pixel AUROC and
// AP (the columns of label_binarize), and the F1 of the per-pixel argmax;
// the category's macro values are their means.
type MultiType struct {
	classes []string
	ovr     []*Pixels
	conf    []uint64 // conf[truth*C+pred] of the argmax
	mask    []uint8
	pred    []uint8
}

// NewMultiType returns an accumulator for the given classes; classes[0] is
// the normal class. At most 255 classes.
func NewMultiType(classes []string) (*MultiType, error) {
	c := len(classes)
	if c < 2 || c > 255 {
		return nil, fmt.Errorf("metrics: multi-type needs 2 to 255 classes, got %d", c)
	}
	m := &MultiType{classes: append([]string(nil), classes...), conf: make([]uint64, c*c)}
	for range classes {
		p, err := NewPixels(PixelOptions{NoRegions: true})
		if err != nil {
			return nil, err
		}
		m.ovr = append(m.ovr, p)
	}
	return m, nil
}

// Add adds one image: scores[c] is the width×height map of class c, truth
// the ground-truth class index of every pixel. On error nothing is added.
func (m *MultiType) Add(scores [][]float32, truth []uint8, width, height int) error {
	c := len(m.classes)
	n := width * height
	if width <= 0 || height <= 0 || len(truth) != n || len(scores) != c {
		return fmt.Errorf("metrics: multi-type image %d×%d: %d class maps for %d classes, %d labels: %w",
			width, height, len(scores), c, len(truth), ErrShape)
	}
	for k, s := range scores {
		if len(s) != n {
			return fmt.Errorf("metrics: multi-type map of class %s has %d values for %d×%d: %w", m.classes[k], len(s), width, height, ErrShape)
		}
		for i, v := range s {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("metrics: class %s score at (x=%d, y=%d) is %v: %w", m.classes[k], i%width, i/width, v, ErrNonFinite)
			}
		}
	}
	if o := m.ovr[0]; uint64(o.negN)+uint64(o.pos.n)+uint64(n) >= 1<<32 {
		return fmt.Errorf("metrics: more than 2^32-1 pixels: %w", ErrTooLarge)
	}
	for i, t := range truth {
		if int(t) >= c {
			return fmt.Errorf("metrics: ground-truth class %d at (x=%d, y=%d) is not below %d: %w", t, i%width, i/width, c, ErrMaskValue)
		}
	}
	// Argmax, the first maximum on ties as numpy's argmax.
	m.pred = grow(m.pred, n)
	for i := range m.pred {
		best, arg := scores[0][i], 0
		for k := 1; k < c; k++ {
			if v := scores[k][i]; v > best {
				best, arg = v, k
			}
		}
		m.pred[i] = uint8(arg)
		m.conf[int(truth[i])*c+arg]++
	}
	m.mask = grow(m.mask, n)
	for k := range m.classes {
		for i, t := range truth {
			m.mask[i] = 0
			if int(t) == k {
				m.mask[i] = 1
			}
		}
		if err := m.ovr[k].Add(scores[k], m.mask, width, height); err != nil {
			return fmt.Errorf("metrics: class %s: %w", m.classes[k], err)
		}
	}
	return nil
}

func grow(b []uint8, n int) []uint8 {
	if cap(b) < n {
		return make([]uint8, n)
	}
	return b[:n]
}

// ClassResult holds the pixel metrics of one class of a category.
type ClassResult struct {
	Class  string
	Pixels uint64 // ground-truth pixels of the class
	AUROC  Value  // one-vs-rest
	AP     Value  // one-vs-rest
	F1     Value  // of the argmax prediction
}

// MultiTypeResult holds the multi-type metrics of one category.
type MultiTypeResult struct {
	Classes []ClassResult
	// MacroAUROC and MacroAP are the means over all classes, undefined when
	// any class is (scikit-learn raises there). MacroF1 is the mean over the
	// classes present in the ground truth or the prediction, as f1_score
	// with average="macro".
	MacroAUROC, MacroAP, MacroF1 Value
	// Confusion[t][p] counts pixels of class t predicted as class p.
	Confusion [][]uint64
}

// Compute returns the metrics of everything added; like Pixels.Compute it
// can be called once.
func (m *MultiType) Compute(ctx context.Context) (MultiTypeResult, error) {
	c := len(m.classes)
	r := MultiTypeResult{}
	for t := 0; t < c; t++ {
		r.Confusion = append(r.Confusion, append([]uint64(nil), m.conf[t*c:(t+1)*c]...))
	}
	var aurocs, aps, f1s []float64
	var badAUROC, badAP []string
	for k, name := range m.classes {
		pr, err := m.ovr[k].Compute(ctx)
		if err != nil {
			return MultiTypeResult{}, fmt.Errorf("metrics: class %s: %w", name, err)
		}
		cr := ClassResult{Class: name, Pixels: pr.Pos, AUROC: pr.AUROC, AP: pr.AP}
		var tp, fp, fn uint64
		for t := 0; t < c; t++ {
			switch {
			case t == k:
				tp = m.conf[t*c+k]
				for p := 0; p < c; p++ {
					if p != k {
						fn += m.conf[t*c+p]
					}
				}
			default:
				fp += m.conf[t*c+k]
			}
		}
		if tp+fp+fn == 0 {
			cr.F1 = undefined("class absent from both the ground truth and the prediction")
		} else {
			cr.F1 = defined(float64(2*tp) / float64(2*tp+fp+fn))
			f1s = append(f1s, cr.F1.V)
		}
		if cr.AUROC.OK() {
			aurocs = append(aurocs, cr.AUROC.V)
		} else {
			badAUROC = append(badAUROC, name)
		}
		if cr.AP.OK() {
			aps = append(aps, cr.AP.V)
		} else {
			badAP = append(badAP, name)
		}
		r.Classes = append(r.Classes, cr)
	}
	r.MacroAUROC = macro(aurocs, badAUROC)
	r.MacroAP = macro(aps, badAP)
	r.MacroF1 = macro(f1s, nil)
	return r, nil
}

func macro(vs []float64, bad []string) Value {
	if len(bad) > 0 {
		return undefined("undefined for class " + strings.Join(bad, ", "))
	}
	if len(vs) == 0 {
		return undefined("no classes")
	}
	return defined(mean(vs))
}

func mean(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += v
	}
	return s / float64(len(vs))
}

// TypeSummary is one row of the per-defect-type table: a class's metrics
// averaged over the categories whose class list contains it.
type TypeSummary struct {
	Type       string
	AUROC      Value
	AP         Value
	F1         Value
	Categories int // categories whose list contains the type
	// Undefined counts, per metric, the categories where the type's value
	// was undefined (e.g. no pixels of the type); they are left out of the
	// mean.
	Undefined map[string]int
}

// SummariseTypes builds the per-defect-type table from per-category results,
// in order of first appearance. The normal class gets a row too, as in
// DAPO's table.
func SummariseTypes(results []MultiTypeResult) []TypeSummary {
	type acc struct {
		auroc, ap, f1 []float64
		n             int
		undef         map[string]int
	}
	var order []string
	by := map[string]*acc{}
	for _, r := range results {
		for _, c := range r.Classes {
			a := by[c.Class]
			if a == nil {
				a = &acc{undef: map[string]int{}}
				by[c.Class] = a
				order = append(order, c.Class)
			}
			a.n++
			for _, m := range []struct {
				name string
				v    Value
				dst  *[]float64
			}{{"auroc", c.AUROC, &a.auroc}, {"ap", c.AP, &a.ap}, {"f1", c.F1, &a.f1}} {
				if m.v.OK() {
					*m.dst = append(*m.dst, m.v.V)
				} else {
					a.undef[m.name]++
				}
			}
		}
	}
	var out []TypeSummary
	for _, name := range order {
		a := by[name]
		s := TypeSummary{Type: name, Categories: a.n, Undefined: a.undef}
		s.AUROC = meanOrUndefined(a.auroc)
		s.AP = meanOrUndefined(a.ap)
		s.F1 = meanOrUndefined(a.f1)
		out = append(out, s)
	}
	return out
}

func meanOrUndefined(vs []float64) Value {
	if len(vs) == 0 {
		return undefined("undefined in every category containing the type")
	}
	return defined(mean(vs))
}

// TypeAccuracy accumulates image-level defect-type predictions of one
// category: for each anomalous image, the true type and one score per type
// of the category's list (normal excluded); the prediction is the argmax.
// No reference reports this; it is what users ask for.
type TypeAccuracy struct {
	types []string
	conf  []uint64
}

// NewTypeAccuracy returns an accumulator over the category's defect types.
func NewTypeAccuracy(types []string) (*TypeAccuracy, error) {
	if len(types) == 0 {
		return nil, fmt.Errorf("metrics: type accuracy needs at least one defect type")
	}
	return &TypeAccuracy{types: append([]string(nil), types...), conf: make([]uint64, len(types)*len(types))}, nil
}

// Add adds one anomalous image of type truth (an index into the types)
// with its per-type scores.
func (a *TypeAccuracy) Add(truth int, scores []float64) error {
	c := len(a.types)
	if truth < 0 || truth >= c {
		return fmt.Errorf("metrics: defect type index %d is not in [0, %d): %w", truth, c, ErrShape)
	}
	if len(scores) != c {
		return fmt.Errorf("metrics: %d type scores for %d types: %w", len(scores), c, ErrShape)
	}
	arg := 0
	for k, v := range scores {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("metrics: score of type %s is %v: %w", a.types[k], v, ErrNonFinite)
		}
		if v > scores[arg] {
			arg = k
		}
	}
	a.conf[truth*c+arg]++
	return nil
}

// TypeAccuracyResult is the image-level defect-type classification of one
// category.
type TypeAccuracyResult struct {
	Images   uint64
	Accuracy Value // top-1 accuracy (micro)
	// BalancedAccuracy is the mean per-type recall over the types that have
	// images, as scikit-learn's balanced_accuracy_score.
	BalancedAccuracy Value
	Types            []string
	Confusion        [][]uint64 // Confusion[true][predicted]
}

// Result returns the accuracy of the images added so far.
func (a *TypeAccuracy) Result() TypeAccuracyResult {
	c := len(a.types)
	r := TypeAccuracyResult{Types: append([]string(nil), a.types...)}
	var correct uint64
	var recalls []float64
	for t := 0; t < c; t++ {
		row := append([]uint64(nil), a.conf[t*c:(t+1)*c]...)
		r.Confusion = append(r.Confusion, row)
		var n uint64
		for _, v := range row {
			n += v
		}
		r.Images += n
		correct += row[t]
		if n > 0 {
			recalls = append(recalls, float64(row[t])/float64(n))
		}
	}
	if r.Images == 0 {
		r.Accuracy = undefined("no anomalous images")
		r.BalancedAccuracy = undefined("no anomalous images")
		return r
	}
	r.Accuracy = defined(float64(correct) / float64(r.Images))
	r.BalancedAccuracy = defined(mean(recalls))
	return r
}
