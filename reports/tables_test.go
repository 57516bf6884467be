package reports

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/results"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// checkGolden compares got with testdata/name, rewriting it under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed; rerun with -update if intended:\n%s", p, got)
	}
}

func value(v float64) metrics.Value { return metrics.Value{V: v} }

func undef(reason string) metrics.Value { return metrics.Value{V: math.NaN(), Reason: reason} }

// edgeColumns are two hand-made runs that exercise every rule: a "|" in a
// category name and a run label, an undefined metric, a category only one
// run has, a partial mean, a tie at the printed precision, and defect types
// that are seen, novel, and seen by one run but novel to the other.
func edgeColumns() []Column {
	a := results.New("mvtec", "dapo", "tiny")
	a.Settings["aupro"] = "cflow200"
	b := results.New("mvtec", "dapo/e1", "tiny")
	b.Settings["aupro"] = "cflow200"
	set := func(r *results.Results, cat string, vals map[string]metrics.Value) {
		e := results.NewEntry()
		for k, v := range vals {
			e.Set(k, v)
		}
		r.Categories[cat] = e
	}
	set(a, "bottle", map[string]metrics.Value{results.ImageAUROC: value(0.98), results.ImageAP: value(0.9912), results.PixelAUPRO: value(0.5)})
	set(b, "bottle", map[string]metrics.Value{results.ImageAUROC: value(0.97), results.ImageAP: value(0.9914), results.PixelAUPRO: value(0.6)})
	set(a, "cable|pipe", map[string]metrics.Value{results.ImageAUROC: value(0.5), results.ImageAP: value(0.25), results.PixelAUPRO: undef("no defect regions in the ground truth")})
	set(b, "cable|pipe", map[string]metrics.Value{results.ImageAUROC: value(0.75), results.ImageAP: value(0.125), results.PixelAUPRO: undef("no defect regions in the ground truth")})
	set(a, "zipper", map[string]metrics.Value{results.ImageAUROC: value(1), results.ImageAP: value(1), results.PixelAUPRO: value(-0.0)})
	a.ComputeMean()
	b.ComputeMean()
	ty := func(r *results.Results, name, voc string, auroc, ap, f1 metrics.Value) {
		if r.DefectTypes == nil {
			r.DefectTypes = map[string]*results.Entry{}
		}
		e := results.NewEntry()
		e.Set(results.PixelAUROC, auroc)
		e.Set(results.PixelAP, ap)
		e.Set(results.PixelF1, f1)
		e.Counts[results.NCategories] = 1
		if voc != "" {
			e.Notes[VocabularyNote] = voc
		}
		r.DefectTypes[name] = e
	}
	ty(a, "crack", Seen, value(0.9), value(0.3), value(0.2))
	ty(b, "crack", Seen, value(0.8), value(0.4), value(0.2))
	ty(a, "scratch", Novel, value(0.7), value(0.1), undef("no pixels of this type"))
	ty(b, "scratch", Novel, value(0.6), value(0.2), value(0.05))
	ty(a, "hole", Seen, value(0.5), value(0.5), value(0.5))
	ty(b, "hole", Novel, value(0.55), value(0.45), value(0.5))
	ty(b, "poke", Novel, value(0.65), value(0.05), value(0.01))
	return []Column{{"dapo", a}, {"dapo|e1", b}}
}

func readColumn(t *testing.T, label, file string) Column {
	t.Helper()
	r, err := results.Read(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return Column{label, r}
}

func TestTablesGolden(t *testing.T) {
	for _, c := range []struct {
		golden string
		cols   func(t *testing.T) []Column
	}{
		{"tables-edge.golden.md", func(*testing.T) []Column { return edgeColumns() }},
		// Real results of `dapobench run` on the MPDD fixture, two variants.
		{"tables-mpdd.golden.md", func(t *testing.T) []Column {
			return []Column{readColumn(t, "dapo", "mpdd-dapo.results.json"), readColumn(t, "dapo/e1", "mpdd-dapo-e1.results.json")}
		}},
		{"tables-mpdd-one.golden.md", func(t *testing.T) []Column {
			return []Column{readColumn(t, "dapo", "mpdd-dapo.results.json")}
		}},
	} {
		t.Run(c.golden, func(t *testing.T) {
			var b bytes.Buffer
			cols := c.cols(t)
			if err := WriteTables(&b, cols, TableOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := WriteDefectTypeTables(&b, cols, TableOptions{}); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, c.golden, b.Bytes())
		})
	}
}

// TestTablesRules checks the rules of the layout on the edge case directly,
// so that a golden file refreshed by mistake cannot hide a broken rule.
func TestTablesRules(t *testing.T) {
	var b bytes.Buffer
	cols := edgeColumns()
	if err := WriteTables(&b, cols, TableOptions{Heading: 2}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"## Image level\n",
		"### Image AUROC (%)\n",
		"### Pixel AUPRO (%, cflow200 variant)\n",
		"| cable\\|pipe ", // escaped category
		"dapo\\|e1",       // escaped label
		"| **98.0** |",    // best of the row in bold
		"| **99.1** |",    // a tie at the printed precision: both bold
		" 0.0 |",          // negative zero
		"<sup>1</sup> no defect regions in the ground truth",
		"category zipper is not in this run",
		"mean over 2 of 3 categories; undefined in cable\\|pipe",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "-0.0") {
		t.Errorf("negative zero printed:\n%s", out)
	}
	if strings.Count(out, "**99.1**") != 2 {
		t.Errorf("a tie should bold both cells:\n%s", out)
	}
	// Every row has as many separators as the header: no "|" leaked.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "|") {
			if n := strings.Count(strings.ReplaceAll(line, "\\|", ""), "|"); n != 4 {
				t.Errorf("row with %d separators: %s", n, line)
			}
		}
	}
}

func TestDefectTypeGroups(t *testing.T) {
	var b bytes.Buffer
	if err := WriteDefectTypeTables(&b, edgeColumns(), TableOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	section := func(title string) string {
		i := strings.Index(out, title)
		if i < 0 {
			t.Fatalf("no %q in\n%s", title, out)
		}
		s := out[i+len(title):]
		if j := strings.Index(s, "\n### "); j >= 0 {
			s = s[:j]
		}
		return s
	}
	for _, c := range []struct {
		title      string
		has, hasnt []string
	}{
		{"### Seen defect types", []string{"| crack "}, []string{"scratch", "hole", "poke"}},
		{"### Novel defect types", []string{"| scratch ", "| poke "}, []string{"crack", "hole"}},
		{"### Defect types seen by some runs", []string{"| hole ", "seen in this run's vocabulary", "novel in this run's vocabulary"}, []string{"crack"}},
	} {
		s := section(c.title)
		for _, w := range c.has {
			if !strings.Contains(s, w) {
				t.Errorf("%s: missing %q:\n%s", c.title, w, s)
			}
		}
		for _, w := range c.hasnt {
			if strings.Contains(s, w) {
				t.Errorf("%s: unexpected %q:\n%s", c.title, w, s)
			}
		}
	}
	// The novel mean of run "dapo" covers scratch only for AUROC (70.0),
	// and AP over the one type it has (10.0): poke is missing there.
	if s := section("### Novel defect types"); !strings.Contains(s, "mean over 1 of 2 types; no value in this run for poke") {
		t.Errorf("novel mean note:\n%s", s)
	}
}

func TestTablesErrors(t *testing.T) {
	a := edgeColumns()[0]
	v := results.New("visa", "dapo", "tiny")
	for _, c := range []struct {
		cols []Column
		want string
	}{
		{nil, "at least one run"},
		{[]Column{{"x", nil}}, `column 1 ("x") has no results`},
		{[]Column{a, {"v", v}}, "cannot mix datasets mvtec (dapo) and visa (v)"},
	} {
		var b bytes.Buffer
		err := WriteTables(&b, c.cols, TableOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.cols, err, c.want)
		}
	}
}

func TestEscapeCell(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      "plain",
		"a|b":        `a\|b`,
		"a||b":       `a\|\|b`,
		"two\nlines": "two lines",
		"crlf\r\nx":  "crlf x",
	} {
		if got := EscapeCell(in); got != want {
			t.Errorf("EscapeCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0.98, "98.0"}, {0.9995, "100.0"}, {1, "100.0"}, {math.Copysign(0, -1), "0.0"}, {-1e-9, "0.0"}, {0.12345, "12.3"},
	} {
		if got := Percent(c.v); got != c.want {
			t.Errorf("Percent(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}
