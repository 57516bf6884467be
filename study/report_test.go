package study

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/results"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestReportGolden writes the report of a study whose runs are synthetic
// (scores drawn from a hash, metrics computed from them) and compares it
// with testdata/report.golden.md: the paper layout, mean ± std over seeds,
// the seen/novel split, the paired tests against the reference, and the
// notes of a cell not evaluated and of a run not finished.
// Refresh with: go test ./study -run ReportGolden -update
func TestReportGolden(t *testing.T) {
	p, err := ParsePlan("testdata/report.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	g, err := MakeGraph(context.Background(), p, PlanOptions{Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	quality := map[string]float64{"DAPO": 1.2, "AnomalyCLIP": 0.8, "WinCLIP": 0.5}
	for _, j := range g.Jobs {
		if j.Kind != KindEval {
			continue
		}
		e := j.Eval
		if e.Row == "WinCLIP" && e.Loader.Dataset == "mad-real" {
			continue // not finished
		}
		writeSyntheticRun(t, g.Path(e.Out), e, quality[e.Row])
		if err := mkdirAll(g.jobDir(j)); err != nil {
			t.Fatal(err)
		}
		if err := writeRecord(filepath.Join(g.jobDir(j), doneFile), &Record{Fingerprint: j.Fingerprint}); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteReport(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.md")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("RESULTS.md differs from %s (go test ./study -run ReportGolden -update); got:\n%s", golden, got)
	}
}

// writeSyntheticRun writes a run directory of two categories of ten
// images whose scores separate the labels by q (plus noise that depends
// on the row, seed, dataset and image); the image metrics are computed
// from the scores, as rundir.Compare checks.
func writeSyntheticRun(t *testing.T, dir string, e *EvalJob, q float64) {
	t.Helper()
	r := results.New(e.Loader.Dataset, e.Scheme, "synthetic")
	r.Settings["aupro"] = "cflow200"
	noise := func(parts ...any) float64 {
		h := fnv.New64a()
		fmt.Fprint(h, parts...)
		return float64(h.Sum64()%10000)/10000 - 0.5
	}
	for _, cat := range []string{"a", "b"} {
		var scores []float64
		var labels []bool
		rows := [][]string{results.ScoresHeader}
		for i := range 10 {
			l := i%3 != 0
			s := noise(e.Row, e.Seed, e.Loader.Dataset, cat, i)
			if l {
				s += q * 0.5
			}
			scores, labels = append(scores, s), append(labels, l)
			lab, ty := "0", ""
			if l {
				lab, ty = "1", "scratch"
			}
			rows = append(rows, []string{fmt.Sprintf("%s/%03d.png", cat, i), lab, ty, fmt.Sprint(s)})
		}
		b, err := metrics.BinaryScores(scores, labels)
		if err != nil {
			t.Fatal(err)
		}
		en := results.NewEntry()
		en.Set(results.ImageAUROC, b.AUROC)
		en.Set(results.ImageAP, b.AP)
		en.Set(results.ImageF1Max, b.F1Max)
		en.Set(results.PixelAUPRO, metrics.Value{V: math.Min(1, 0.3+0.2*q+0.05*noise(e.Row, e.Seed, cat))})
		en.Counts[results.NNormal], en.Counts[results.NAnomalous] = 4, 6
		r.Categories[cat] = en
		if err := os.MkdirAll(filepath.Join(dir, results.ScoresDir), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, results.ScoresDir, cat+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		w := csv.NewWriter(f)
		w.WriteAll(rows)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r.ComputeMean()
	if e.Scheme == "dapo" {
		r.DefectTypes = map[string]*results.Entry{}
		for _, ty := range []struct{ name, group string }{{"good", reports.Seen}, {"scratch", reports.Seen}, {"hole", reports.Seen}, {"stain", reports.Novel}} {
			en := results.NewEntry()
			en.Set(results.PixelAUROC, metrics.Value{V: 0.6 + 0.1*noise(ty.name, e.Seed, e.Loader.Dataset)})
			en.Notes[reports.VocabularyNote] = ty.group
			r.DefectTypes[ty.name] = en
		}
	}
	// What makes the directory a finished run (results.CheckComplete):
	// a record and examples per category and a manifest listing them.
	type line struct {
		Category    string `json:"category"`
		Fingerprint string `json:"fingerprint"`
	}
	var lines []line
	for _, cat := range []string{"a", "b"} {
		rec := results.CategoryRecord{Category: cat, Fingerprint: "synthetic-" + cat}
		lines = append(lines, line{cat, rec.Fingerprint})
		writeJSONFile(t, filepath.Join(dir, results.CategoriesDir, cat+".json"), rec)
		writeJSONFile(t, filepath.Join(dir, results.ExamplesDir, cat, results.ExamplesFile), []results.Example{})
	}
	writeJSONFile(t, filepath.Join(dir, results.ManifestName), map[string]any{"schema": results.ManifestSchema, "categories": lines})
	if err := results.Write(filepath.Join(dir, results.FileName), r); err != nil {
		t.Fatal(err)
	}
}

func writeJSONFile(t *testing.T, p string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
