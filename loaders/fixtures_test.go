package loaders_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/loaders"
)

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureMan  *fixtures.Manifest
	fixtureErr  error
)

// fixtureTree generates the synthetic datasets once per test binary and
// returns their folder; tests that break a tree work on a copy (cloneTree).
func fixtureTree(t testing.TB) (string, *fixtures.Manifest) {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = os.MkdirTemp("", "dapobench-fixtures-")
		if fixtureErr == nil {
			fixtureMan, fixtureErr = fixtures.Generate(context.Background(), fixtureDir, fixtures.DefaultSeed)
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureDir, fixtureMan
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// cloneTree copies one fixture dataset into a fresh temporary folder.
func cloneTree(t *testing.T, id string) string {
	t.Helper()
	src, _ := fixtureTree(t)
	src = filepath.Join(src, id)
	dst := filepath.Join(t.TempDir(), id)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// expectedSummary counts the generator's own record of what it wrote.
func expectedSummary(id string, ds *fixtures.Dataset) loaders.Summary {
	sum := loaders.Summary{Dataset: id, Categories: map[string]*loaders.CategorySummary{}}
	for _, s := range ds.Samples {
		cs := sum.Categories[s.Category]
		if cs == nil {
			cs = &loaders.CategorySummary{DefectTypes: map[string]int{}}
			sum.Categories[s.Category] = cs
		}
		c := &cs.Train
		if s.Split == "test" {
			c = &cs.Test
		}
		if s.Label == 1 {
			c.Anomalous++
			if s.Split == "test" {
				cs.DefectTypes[s.DefectType]++
			}
		} else {
			c.Normal++
		}
	}
	return sum
}

// TestFixturesMatchManifest loads every generated dataset and compares the
// loader's samples, one by one, with what the generator says it wrote.
func TestFixturesMatchManifest(t *testing.T) {
	dir, man := fixtureTree(t)
	for _, id := range fixtures.IDs {
		t.Run(id, func(t *testing.T) {
			set, err := loaders.Load(context.Background(), id, loaders.Options{Root: filepath.Join(dir, id), Deep: true})
			if err != nil {
				t.Fatal(err)
			}
			want := expectedSummary(id, man.Datasets[id])
			got := loaders.Summarize(set)
			if !equalSummary(got, want) {
				t.Errorf("summary\n got %s\nwant %s", dump(got), dump(want))
			}
			type key struct{ img, mask, defect, view, split string }
			wantS := map[key]int{}
			for _, s := range man.Datasets[id].Samples {
				wantS[key{s.Image, s.Mask, s.DefectType, s.View, s.Split}] = s.Label
			}
			if len(set.Samples) != len(wantS) {
				t.Fatalf("%d samples, want %d", len(set.Samples), len(wantS))
			}
			for _, s := range set.Samples {
				k := key{s.RelImage, s.RelMask, s.DefectType, s.View, s.Split}
				label, ok := wantS[k]
				if !ok {
					t.Errorf("unexpected sample %+v", k)
					continue
				}
				if label != s.Label {
					t.Errorf("%s: label %d, want %d", s.RelImage, s.Label, label)
				}
				if s.Width == 0 || s.Height == 0 {
					t.Errorf("%s: size not probed", s.RelImage)
				}
				if s.Dataset != id || !filepath.IsAbs(s.ImagePath) {
					t.Errorf("%s: dataset %q, path %q", s.RelImage, s.Dataset, s.ImagePath)
				}
			}
		})
	}
}

func equalSummary(a, b loaders.Summary) bool {
	if a.Dataset != b.Dataset || len(a.Categories) != len(b.Categories) {
		return false
	}
	for k, x := range a.Categories {
		y := b.Categories[k]
		if y == nil || x.Train != y.Train || x.Test != y.Test || len(x.DefectTypes) != len(y.DefectTypes) {
			return false
		}
		for t, n := range x.DefectTypes {
			if y.DefectTypes[t] != n {
				return false
			}
		}
	}
	return true
}

func dump(s loaders.Summary) string {
	keys := make([]string, 0, len(s.Categories))
	for k := range s.Categories {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		c := s.Categories[k]
		fmt.Fprintf(&b, "%s: train %d/%d test %d/%d %v; ", k, c.Train.Normal, c.Train.Anomalous, c.Test.Normal, c.Test.Anomalous, c.DefectTypes)
	}
	return b.String()
}
