package studies_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/dapobench/dapobench/schemes"
	"github.com/dapobench/dapobench/studies"
	"github.com/dapobench/dapobench/study"
)

// TestShippedPlans checks that every shipped plan is valid, as written
// and as `dapobench demo` writes it out.
func TestShippedPlans(t *testing.T) {
	dir, err := studies.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{studies.ZeroShot, studies.Ablation, studies.Fixtures} {
		for _, p := range []string{name, filepath.Join(dir, name)} {
			if _, err := study.ParsePlan(p); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
	}
}

// TestZeroShotHasEveryScheme keeps DAPO's zero-shot protocol complete: a
// scheme added to dapobench is a method of the protocol (one line under
// methods in studies/zero-shot.yaml, and a model entry if it needs a
// model variant of its own).
func TestZeroShotHasEveryScheme(t *testing.T) {
	p, err := study.ParsePlan(studies.ZeroShot)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, m := range p.Methods {
		have = append(have, m.Scheme)
	}
	for _, s := range schemes.Names() {
		if !slices.Contains(have, s) {
			t.Errorf("%s has no method with scheme %s", studies.ZeroShot, s)
		}
	}
	f, err := study.ParsePlan(studies.Fixtures)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Methods) != len(p.Methods) || len(f.Train) != len(p.Train) || len(f.Evaluate) != len(p.Evaluate) {
		t.Errorf("the fixture study is not the zero-shot protocol's shape")
	}
	a, err := study.ParsePlan(studies.Ablation)
	if err != nil {
		t.Fatal(err)
	}
	var variants []string
	for _, r := range a.Rows() {
		variants = append(variants, r.Variant)
	}
	spec, _ := schemes.Lookup("dapo")
	for _, v := range spec.Variants() {
		if !slices.Contains(variants, v.Name) {
			t.Errorf("%s lacks the variant %s", studies.Ablation, v.Name)
		}
	}
	if len(a.Seeds) != 3 {
		t.Errorf("%s has %d seeds, want 3", studies.Ablation, len(a.Seeds))
	}
}
