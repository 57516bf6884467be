package metrics

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/dapobench/dapobench/internal/parallel"
)

// TestParallelCategories evaluates several categories at once, each with
// its own accumulators, and checks that the results equal a sequential run.
// Run it with -race.
func TestParallelCategories(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	var cats [][]naiveImage
	for k := 0; k < 6; k++ {
		cats = append(cats, randomImages(rng, 4, 40, 30, k%5))
	}
	eval := func(ctx context.Context, imgs []naiveImage) (PixelResult, error) {
		p, err := NewPixels(PixelOptions{})
		if err != nil {
			return PixelResult{}, err
		}
		for _, m := range imgs {
			if err := p.Add(m.scores, m.mask, m.w, m.h); err != nil {
				return PixelResult{}, err
			}
		}
		return p.Compute(ctx)
	}
	want := make([]PixelResult, len(cats))
	for i, c := range cats {
		r, err := eval(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = r
	}
	got := make([]PixelResult, len(cats))
	err := parallel.For(context.Background(), len(cats), 3, func(ctx context.Context, i int) error {
		r, err := eval(ctx, cats[i])
		got[i] = r
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range cats {
		g, w := got[i], want[i]
		for _, p := range [][2]Value{{g.AUROC, w.AUROC}, {g.AP, w.AP}, {g.F1Max, w.F1Max},
			{g.AUPROMVTec, w.AUPROMVTec}, {g.AUPROCflow200, w.AUPROCflow200}} {
			if p[0].Reason != p[1].Reason || !near(p[0].V, p[1].V, 0) {
				t.Errorf("category %d: parallel %+v, sequential %+v", i, p[0], p[1])
			}
		}
	}
}
