package rundir

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dapobench/dapobench/reports/internal/runtest"
)

// BenchmarkCompare compares two runs of 15 categories of 150 images each,
// about the size of MVTec-AD, with the default 2000 resamples.
func BenchmarkCompare(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	cats := func(shift float64) map[string]runtest.Category {
		out := map[string]runtest.Category{}
		for c := 0; c < 15; c++ {
			var cat runtest.Category
			for i := 0; i < 150; i++ {
				pos := i%3 == 0
				def := ""
				if pos {
					def = "crack"
				}
				v := rng.Float64()
				if pos {
					v += shift
				}
				cat.Images = append(cat.Images, "c"+strconv.Itoa(c)+"/"+strconv.Itoa(i)+".png")
				cat.Labels = append(cat.Labels, pos)
				cat.Defects = append(cat.Defects, def)
				cat.Scores = append(cat.Scores, v)
			}
			out["c"+strconv.Itoa(c)] = cat
		}
		return out
	}
	dir := b.TempDir()
	// Both runs score the same images: the B scores are A's, shifted.
	ca := cats(0.2)
	cb := map[string]runtest.Category{}
	for k, c := range ca {
		d := c
		d.Scores = append([]float64(nil), c.Scores...)
		for i := range d.Scores {
			if d.Labels[i] {
				d.Scores[i] += 0.1
			}
		}
		cb[k] = d
	}
	runtest.Write(b, filepath.Join(dir, "a"), runtest.Spec{Dataset: "mvtec", Scheme: "a", Cats: ca})
	runtest.Write(b, filepath.Join(dir, "b"), runtest.Spec{Dataset: "mvtec", Scheme: "b", Cats: cb})
	ra, err := Open(filepath.Join(dir, "a"))
	if err != nil {
		b.Fatal(err)
	}
	rb, err := Open(filepath.Join(dir, "b"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compare(context.Background(), ra, rb, CompareOptions{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
