package rundir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dapobench/dapobench/reports/internal/runtest"
)

// FuzzParts feeds arbitrary bytes to the parsers of a run's parts:
// examples.json (and the maps it names), the category record, and the
// scores file. Each must return an error or a checked value, never panic.
func FuzzParts(f *testing.F) {
	f.Add([]byte(`[{"kind": "top-anomalous", "map": "examples/bottle/top-anomalous.npy", "size": 8}]`))
	f.Add([]byte(`{"category": "bottle", "multi_type": {"classes": [{"class": "good"}], "confusion": [[1, 2]]}}`))
	f.Add([]byte("image,label,defect_type,score\nbottle/test/good/0.png,0,,0.5\n"))
	f.Add([]byte(`[{"kind": "top-normal", "map": "../x.npy", "size": -1}]`))
	// One run directory per fuzzing process; every input overwrites its
	// parts, one input at a time.
	dir := f.TempDir()
	runtest.Write(f, dir, runtest.Spec{Dataset: "mvtec", Scheme: "dapo", MapSize: 8, Multi: true,
		Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0)}})
	r, err := Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range []string{
			filepath.Join(dir, "examples", "bottle", "examples.json"),
			filepath.Join(dir, "categories", "bottle.json"),
			filepath.Join(dir, "scores", "bottle.csv"),
			filepath.Join(dir, "examples", "bottle", "top-anomalous.npy"),
		} {
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if ex, err := r.Examples("bottle"); err == nil {
			for _, e := range ex {
				if m, err := r.Map(e); err == nil && len(m) != e.Size*e.Size {
					t.Errorf("map of %d values for size %d", len(m), e.Size)
				}
			}
		}
		if rec, err := r.Record("bottle"); err == nil && rec.MultiType != nil {
			for _, row := range rec.MultiType.Confusion {
				if len(row) != len(rec.MultiType.Classes) {
					t.Errorf("ragged confusion matrix accepted")
				}
			}
		}
		if s, err := r.Scores("bottle"); err == nil && len(s.Values) != 12 {
			t.Errorf("%d scores accepted for 12 images", len(s.Values))
		}
	})
}
