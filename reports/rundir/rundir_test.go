package rundir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/reports/internal/runtest"
	"github.com/dapobench/dapobench/results"
)

// writeRun writes a run directory and opens it.
func writeRun(t *testing.T, dir string, s runtest.Spec) *Run {
	t.Helper()
	runtest.Write(t, dir, s)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	broken := filepath.Join(dir, "broken")
	os.Mkdir(broken, 0o755)
	os.WriteFile(filepath.Join(broken, ResultsFile), []byte(`{"schema": "dapobench/results/v1", "dataset": "mpdd", "extra": 1}`), 0o644)
	for _, c := range []struct{ dir, want string }{
		{filepath.Join(dir, "missing"), "no such file"},
		{file, "file: invalid character 'x'"},
		{empty, "incomplete run directory: no results.json"},
		{broken, `broken/results.json: json: unknown field "extra"`},
	} {
		if _, err := Open(c.dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%s): %v, want %q", c.dir, err, c.want)
		}
	}
}

func TestParts(t *testing.T) {
	dir := t.TempDir()
	r := writeRun(t, dir, runtest.Spec{Dataset: "mvtec", Scheme: "dapo", AUPRO: "cflow200", MapSize: 8,
		Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0.1)}})
	s, err := r.Scores("bottle")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Values) != 12 || s.Images[0] != "bottle/test/good/0.png" || !s.Labels[11] {
		t.Errorf("scores %+v", s)
	}
	ex, err := r.Examples("bottle")
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Map(ex[0])
	if err != nil || len(m) != 64 {
		t.Fatalf("map: %d values, %v", len(m), err)
	}
	if _, err := r.Scores("cable"); err == nil || !strings.Contains(err.Error(), `no category "cable"`) {
		t.Errorf("unknown category: %v", err)
	}
	// Parts removed after Open match fs.ErrNotExist, so that reports can
	// leave them out.
	os.RemoveAll(filepath.Join(dir, "categories"))
	if _, err := r.Record("bottle"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent record: %v", err)
	}
	os.RemoveAll(filepath.Join(dir, "examples"))
	if _, err := r.Examples("bottle"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent examples: %v", err)
	}
	os.RemoveAll(filepath.Join(dir, "scores"))
	if _, err := r.Scores("bottle"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent scores: %v", err)
	}
}

// TestOpenIncomplete: a run directory is complete only when everything a
// finished run writes is there. Each case takes one thing away, as an
// interrupted run or a failed write (a full disk while writing
// manifest.json) leaves it, and Open refuses the directory, and its
// results.json given as a file, saying what is missing.
func TestOpenIncomplete(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(dir string)
		want string
	}{
		{"no manifest", func(dir string) { os.Remove(filepath.Join(dir, results.ManifestName)) }, "manifest.json: open"},
		{"half a manifest", func(dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, results.ManifestName))
			os.WriteFile(filepath.Join(dir, results.ManifestName), b[:len(b)/2], 0o644)
		}, "manifest.json is not a dapobench/run-manifest/v1 manifest"},
		{"manifest of fewer categories", func(dir string) {
			runtest.WriteJSON(t, filepath.Join(dir, results.ManifestName), map[string]any{"schema": results.ManifestSchema,
				"categories": []map[string]string{{"category": "bottle", "fingerprint": "fp-bottle"}}})
		}, `results.json has category "screw", manifest.json does not list it`},
		{"no record", func(dir string) { os.Remove(filepath.Join(dir, "categories", "screw.json")) }, "categories/screw.json"},
		{"record of another computation", func(dir string) {
			runtest.WriteJSON(t, filepath.Join(dir, "categories", "screw.json"), results.CategoryRecord{Category: "screw", Fingerprint: "old"})
		}, "categories/screw.json is the record of another computation"},
		{"no scores", func(dir string) { os.Remove(filepath.Join(dir, "scores", "bottle.csv")) }, `category "bottle"`},
		{"no examples", func(dir string) { os.RemoveAll(filepath.Join(dir, "examples", "screw")) }, `category "screw"`},
		{"no results", func(dir string) { os.Remove(filepath.Join(dir, ResultsFile)) }, "no results.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeRun(t, dir, runtest.Spec{Dataset: "mvtec", Scheme: "dapo", AUPRO: "cflow200",
				Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0.1), "screw": runtest.Screw(0)}})
			c.edit(dir)
			for _, p := range []string{dir, filepath.Join(dir, ResultsFile)} {
				if c.name == "no results" && p != dir {
					continue
				}
				_, err := Open(p)
				if !errors.Is(err, results.ErrIncomplete) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("Open(%s): %v, want an incomplete run directory and %q", p, err, c.want)
				}
			}
		})
	}
}

// TestOpenFile opens results files: results.json of a run directory has
// the run's parts; a lone results file, as `dapobench eval` writes, has
// none, even beside another run's parts.
func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, runtest.Spec{Dataset: "mvtec", Scheme: "dapo", AUPRO: "cflow200", MapSize: 8,
		Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0.1)}})
	r, err := Open(filepath.Join(dir, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Scores("bottle"); err != nil || r.Dir != dir {
		t.Errorf("results.json: dir %s, scores %v", r.Dir, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ResultsFile))
	lone := filepath.Join(dir, "eval-mvtec.json")
	os.WriteFile(lone, b, 0o644)
	r, err = Open(lone)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Scores("bottle"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "lone results file") {
		t.Errorf("lone file scores: %v", err)
	}
	if _, err := r.Examples("bottle"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lone file examples: %v", err)
	}
	if r.Label() != "dapo" || r.Name() != "eval-mvtec.json" {
		t.Errorf("label %q, name %q", r.Label(), r.Name())
	}
}

func TestPartErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(dir string)
		read func(r *Run) error
		want string
	}{
		{"scores with another count", func(dir string) {
			p := filepath.Join(dir, "scores", "bottle.csv")
			b, _ := os.ReadFile(p)
			lines := strings.SplitAfter(string(b), "\n")
			os.WriteFile(p, []byte(strings.Join(lines[:len(lines)-2], "")), 0o644)
		}, func(r *Run) error { _, err := r.Scores("bottle"); return err },
			"bottle.csv: 7 normal and 4 anomalous images, but"},
		{"scores with a bad row", func(dir string) {
			p := filepath.Join(dir, "scores", "bottle.csv")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), ",0,,", ",2,,", 1)), 0o644)
		}, func(r *Run) error { _, err := r.Scores("bottle"); return err }, "bottle.csv:2: bad row"},
		{"example of unknown kind", func(dir string) {
			runtest.WriteJSON(t, filepath.Join(dir, "examples", "bottle", "examples.json"), []results.Example{{Kind: "best", Size: 8, Map: "x.npy"}})
		}, func(r *Run) error { _, err := r.Examples("bottle"); return err }, `example 1: unknown kind "best"`},
		{"example map outside the run", func(dir string) {
			runtest.WriteJSON(t, filepath.Join(dir, "examples", "bottle", "examples.json"), []results.Example{{Kind: results.TopNormal, Size: 8, Map: "../../etc/passwd"}})
		}, func(r *Run) error { _, err := r.Examples("bottle"); return err }, "is not a path inside the run"},
		{"example map of another size", func(dir string) {
			npy.WriteFile(filepath.Join(dir, "examples", "bottle", "top-anomalous.npy"), []int{4, 4}, make([]float32, 16))
		}, func(r *Run) error {
			ex, err := r.Examples("bottle")
			if err != nil {
				return err
			}
			_, err = r.Map(ex[0])
			return err
		}, "top-anomalous.npy: shape [4 4], want [8 8]"},
		{"record of another category", func(dir string) {
			os.Mkdir(filepath.Join(dir, "categories"), 0o755)
			runtest.WriteJSON(t, filepath.Join(dir, "categories", "bottle.json"), results.CategoryRecord{Category: "screw"})
		}, func(r *Run) error { _, err := r.Record("bottle"); return err }, `record of category "screw", want "bottle"`},
		{"ragged confusion matrix", func(dir string) {
			os.Mkdir(filepath.Join(dir, "categories"), 0o755)
			runtest.WriteJSON(t, filepath.Join(dir, "categories", "bottle.json"), results.CategoryRecord{Category: "bottle",
				MultiType: &results.MultiType{Classes: []results.ClassMetrics{{Class: "good"}, {Class: "broken"}}, Confusion: [][]uint64{{1, 2}, {3}}}})
		}, func(r *Run) error { _, err := r.Record("bottle"); return err }, "confusion row 1 has 1 columns for 2 classes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			r := writeRun(t, dir, runtest.Spec{Dataset: "mvtec", Scheme: "dapo", AUPRO: "cflow200", MapSize: 8,
				Cats: map[string]runtest.Category{"bottle": runtest.Bottle(0.1)}})
			c.edit(dir)
			if err := c.read(r); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}
