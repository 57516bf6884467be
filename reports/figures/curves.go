package figures

import (
	"errors"
	"fmt"

	"github.com/dapobench/dapobench/metrics"
)

// ROC returns the points of the ROC curve of scores (higher is more
// anomalous) against labels (true is anomalous), from (0, 0) to (1, 1):
// one point per distinct score, so that tied scores give a diagonal step
// and the trapezoidal area equals the AUROC metrics computes (ties with
// half credit).
func ROC(scores []float64, labels []bool) (fpr, tpr []float64, err error) {
	t, neg, pos, err := table(scores, labels)
	if err != nil {
		return nil, nil, err
	}
	fpr, tpr = []float64{0}, []float64{0}
	var fp, tp uint64
	for _, g := range t.Groups() {
		fp += g.Neg
		tp += g.Pos
		fpr = append(fpr, float64(fp)/float64(neg))
		tpr = append(tpr, float64(tp)/float64(pos))
	}
	return fpr, tpr, nil
}

// PR returns the precision-recall curve as a step function: between the
// recalls of consecutive thresholds the precision is that of the lower
// threshold, which is how average precision sums it, so the area under the
// drawn steps equals the AP metrics computes. It starts at recall 0 with
// the precision of the highest threshold.
func PR(scores []float64, labels []bool) (recall, precision []float64, err error) {
	t, _, pos, err := table(scores, labels)
	if err != nil {
		return nil, nil, err
	}
	var fp, tp uint64
	r0 := 0.0
	for _, g := range t.Groups() {
		fp += g.Neg
		tp += g.Pos
		if g.Pos == 0 {
			continue // recall does not move: no area
		}
		p := float64(tp) / float64(tp+fp)
		r := float64(tp) / float64(pos)
		recall = append(recall, r0, r)
		precision = append(precision, p, p)
		r0 = r
	}
	return recall, precision, nil
}

// table groups the scores; a curve needs both classes.
func table(scores []float64, labels []bool) (*metrics.Table, uint64, uint64, error) {
	t, err := metrics.NewTable(scores, labels)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("figures: %w", err)
	}
	var neg, pos uint64
	for _, g := range t.Groups() {
		neg += g.Neg
		pos += g.Pos
	}
	switch {
	case pos == 0:
		return nil, 0, 0, fmt.Errorf("figures: curve: %w", &metrics.UndefinedError{Metric: "curve", Reason: "no anomalous images"})
	case neg == 0:
		return nil, 0, 0, fmt.Errorf("figures: curve: %w", &metrics.UndefinedError{Metric: "curve", Reason: "no normal images"})
	}
	return t, neg, pos, nil
}

// IsUndefined reports whether err says a figure has no data to draw (one
// class only), as opposed to bad input.
func IsUndefined(err error) bool { return errors.Is(err, metrics.ErrUndefined) }
