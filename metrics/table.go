package metrics

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Group is one distinct score of a Table with its counts.
type Group struct {
	Score    float64
	Neg, Pos uint64
}

// Table is the grouped score table of a labelled score set small enough to
// sort directly: image-level scores, or one class of a multi-class problem.
// Groups are in descending score order; −0 and +0 form one group.
type Table struct {
	groups   []Group
	neg, pos uint64
}

// NewTable groups scores by value. labels[i] is true for a positive
// (anomalous) sample. NaN and ±Inf scores are rejected with the index of the
// first one, as scikit-learn rejects them.
func NewTable(scores []float64, labels []bool) (*Table, error) {
	if len(scores) != len(labels) {
		return nil, fmt.Errorf("metrics: %d scores but %d labels: %w", len(scores), len(labels), ErrShape)
	}
	if uint64(len(scores)) >= 1<<32 {
		return nil, fmt.Errorf("metrics: %d scores: %w", len(scores), ErrTooLarge)
	}
	type sample struct {
		s   float64
		pos bool
	}
	xs := make([]sample, len(scores))
	for i, s := range scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return nil, fmt.Errorf("metrics: score %d is %v: %w", i, s, ErrNonFinite)
		}
		if s == 0 {
			s = 0 // fold −0 into +0
		}
		xs[i] = sample{s, labels[i]}
	}
	slices.SortFunc(xs, func(a, b sample) int { return cmp.Compare(b.s, a.s) })
	t := &Table{}
	for i, x := range xs {
		if i == 0 || x.s != xs[i-1].s {
			t.groups = append(t.groups, Group{Score: x.s})
		}
		g := &t.groups[len(t.groups)-1]
		if x.pos {
			g.Pos++
			t.pos++
		} else {
			g.Neg++
			t.neg++
		}
	}
	return t, nil
}

// Groups returns the distinct scores in descending order with their counts.
// The slice is shared; do not modify it.
func (t *Table) Groups() []Group { return t.groups }

// Binary computes AUROC, AP and F1-max from the table.
func (t *Table) Binary() Binary {
	c := newCurve(t.neg, t.pos)
	for i, g := range t.groups {
		if g.Pos == 0 {
			c.negOnly(g.Neg)
		} else {
			c.step(g.Neg, g.Pos, 0, uint64(i))
		}
	}
	c.finish()
	return c.binary(func(tok uint64) float64 { return t.groups[tok].Score })
}

// BinaryScores is NewTable followed by Binary.
func BinaryScores(scores []float64, labels []bool) (Binary, error) {
	t, err := NewTable(scores, labels)
	if err != nil {
		return Binary{}, err
	}
	return t.Binary(), nil
}
