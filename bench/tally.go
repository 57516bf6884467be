package bench

import (
	"context"
	"fmt"

	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/results"
)

// tally builds one category's record from its images, taken in sample
// order. Run feeds it a scheme's outputs and Evaluate maps read from disk,
// so that both compute a category the same way.
type tally struct {
	name    string
	pix     *metrics.Pixels
	classes []string                 // multi-type classes, normal first; nil for none
	classOf func(string) (int, bool) // a raw defect type's class
	mt      *metrics.MultiType
	ta      *metrics.TypeAccuracy
	rec     results.CategoryRecord
	scores  []float64
	labels  []bool
}

func newTally(name string, classes []string, classOf func(string) (int, bool)) (*tally, error) {
	t := &tally{name: name, classes: classes, classOf: classOf, rec: results.CategoryRecord{Category: name}}
	var err error
	if t.pix, err = metrics.NewPixels(metrics.PixelOptions{}); err != nil {
		return nil, err
	}
	if classes != nil {
		if t.mt, err = metrics.NewMultiType(classes); err != nil {
			return nil, err
		}
		t.rec.MultiType = &results.MultiType{}
		if t.ta, err = metrics.NewTypeAccuracy(classes[1:]); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// add takes one image: its score, its w×h map with the ground truth at the
// same size, and, with multi-type classes, its class maps and class scores
// (nil scores leave the image out of the type accuracy).
func (t *tally) add(s loaders.Sample, score float64, m []float32, mask []uint8, w, h int, classMaps [][]float32, classScores []float64) error {
	t.scores = append(t.scores, score)
	t.labels = append(t.labels, s.Label == 1)
	if s.Label == 1 {
		t.rec.NAnomalous++
	} else {
		t.rec.NNormal++
	}
	if err := t.pix.Add(m, mask, w, h); err != nil {
		return fmt.Errorf("bench: %s: %w", s.RelImage, err)
	}
	if t.mt == nil {
		return nil
	}
	k := 0
	if s.Label == 1 {
		var ok bool
		if k, ok = t.classOf(s.DefectType); !ok || k == 0 {
			t.rec.MultiType.Excluded++
			return nil
		}
	}
	truth := make([]uint8, w*h)
	for i, v := range mask {
		if v != 0 {
			truth[i] = uint8(k)
		}
	}
	if err := t.mt.Add(classMaps, truth, w, h); err != nil {
		return fmt.Errorf("bench: %s: %w", s.RelImage, err)
	}
	if s.Label == 1 && len(classScores) == len(t.classes) {
		if err := t.ta.Add(k-1, classScores[1:]); err != nil {
			return fmt.Errorf("bench: %s: %w", s.RelImage, err)
		}
	}
	return nil
}

// record computes the category's metrics.
func (t *tally) record(ctx context.Context, aupro metrics.AUPROVariant) (results.CategoryRecord, error) {
	r := t.rec
	img, err := metrics.BinaryScores(t.scores, t.labels)
	if err != nil {
		return r, fmt.Errorf("bench: %s: image scores: %w", t.name, err)
	}
	r.Image = binaryOf(img)
	pr, err := t.pix.Compute(ctx)
	if err != nil {
		return r, fmt.Errorf("bench: %s: %w", t.name, err)
	}
	r.Pixel = binaryOf(pr.Binary)
	au, err := pr.AUPRO(aupro)
	if err != nil {
		return r, err
	}
	r.AUPRO = metricOf(au)
	if t.mt != nil {
		res, err := t.mt.Compute(ctx)
		if err != nil {
			return r, fmt.Errorf("bench: %s: %w", t.name, err)
		}
		m := &results.MultiType{MacroAUROC: metricOf(res.MacroAUROC), MacroAP: metricOf(res.MacroAP), MacroF1: metricOf(res.MacroF1),
			Confusion: res.Confusion, Excluded: t.rec.MultiType.Excluded}
		for _, cr := range res.Classes {
			m.Classes = append(m.Classes, results.ClassMetrics{Class: cr.Class, Pixels: cr.Pixels, AUROC: metricOf(cr.AUROC), AP: metricOf(cr.AP), F1: metricOf(cr.F1)})
		}
		m.TypeAccuracy = metricOf(t.ta.Result().Accuracy)
		r.MultiType = m
	}
	return r, nil
}

func metricOf(v metrics.Value) results.Metric {
	if !v.OK() {
		return results.Metric{Reason: v.Reason}
	}
	x := v.V + 0 // turns −0 (an integral over nothing) into 0
	return results.Metric{Value: &x}
}

func binaryOf(b metrics.Binary) results.Binary {
	return results.Binary{AUROC: metricOf(b.AUROC), AP: metricOf(b.AP), F1Max: metricOf(b.F1Max)}
}
