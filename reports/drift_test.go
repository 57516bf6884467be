package reports

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/results"
)

func mpdd(t *testing.T) *results.Results {
	t.Helper()
	r, err := results.Read("testdata/mpdd-dapo.results.json")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDrift(t *testing.T) {
	nudge := func(d float64) func(*results.Results) {
		return func(r *results.Results) { *r.Categories["tubes"].Metrics[results.ImageAUROC] += d }
	}
	for _, c := range []struct {
		name   string
		edit   func(*results.Results)
		tol    float64
		where  string // of the single expected change; "" for none
		key    string
		golden string
		now    string
	}{
		{"identical", func(*results.Results) {}, DefaultTolerance, "", "", "", ""},
		{"within tolerance", nudge(0.9e-6), DefaultTolerance, "", "", "", ""},
		{"beyond tolerance", nudge(2e-6), DefaultTolerance, "tubes", results.ImageAUROC, "0.1111111111111111", "0.11111311111111111"},
		{"zero tolerance", nudge(1e-12), 0, "tubes", results.ImageAUROC, "0.1111111111111111", "0.11111111111211111"},
		{"large tolerance", nudge(0.01), 0.05, "", "", "", ""},
		{"became null", func(r *results.Results) {
			r.Categories["tubes"].Metrics[results.PixelAUPRO] = nil
			r.Categories["tubes"].Undefined[results.PixelAUPRO] = "no defect regions in the ground truth"
		}, DefaultTolerance, "tubes", results.PixelAUPRO, "0.004299274148520378", "null (no defect regions in the ground truth)"},
		{"metric vanished", func(r *results.Results) { delete(r.Mean.Metrics, results.PixelAP) }, DefaultTolerance, "mean", results.PixelAP, "0.011250350458365149", "absent"},
		{"category vanished", func(r *results.Results) { delete(r.Categories, "tubes") }, DefaultTolerance, "tubes", "(entry)", "present", "absent"},
		{"defect type appeared", func(r *results.Results) { r.DefectTypes["rust"] = results.NewEntry() }, DefaultTolerance, "defect type rust", "(entry)", "absent", "present"},
		{"count changed", func(r *results.Results) { r.Categories["tubes"].Counts[results.NNormal]++ }, DefaultTolerance, "tubes", results.NNormal, "3", "4"},
		{"setting changed", func(r *results.Results) { r.Settings["aupro"] = "mvtec" }, DefaultTolerance, "run", "settings.aupro", `"cflow200"`, `"mvtec"`},
		{"dataset changed", func(r *results.Results) { r.Dataset = "visa" }, DefaultTolerance, "run", "dataset", `"mpdd"`, `"visa"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			golden, now := mpdd(t), mpdd(t)
			c.edit(now)
			got, err := Drift(golden, now, c.tol)
			if err != nil {
				t.Fatal(err)
			}
			if c.where == "" {
				if len(got) != 0 {
					t.Errorf("changes %+v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("changes %+v, want one", got)
			}
			g := got[0]
			if g.Where != c.where || g.Key != c.key || g.Golden != c.golden || g.Now != c.now {
				t.Errorf("change %+v, want %s %s %s → %s", g, c.where, c.key, c.golden, c.now)
			}
		})
	}
}

func TestDriftDelta(t *testing.T) {
	golden, now := mpdd(t), mpdd(t)
	*now.Mean.Metrics[results.ImageAP] -= 0.25
	got, err := Drift(golden, now, DefaultTolerance)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || math.Abs(got[0].Delta+0.25) > 1e-15 {
		t.Fatalf("changes %+v", got)
	}
	var b bytes.Buffer
	if err := WriteChanges(&b, got); err != nil {
		t.Fatal(err)
	}
	want := "| mean  | image_ap | 0.464484126984127 | 0.214484126984127 | -0.25 |"
	if !strings.Contains(b.String(), want) {
		t.Errorf("table:\n%s\nwant row %s", b.String(), want)
	}
}

func TestDriftBadTolerance(t *testing.T) {
	r := mpdd(t)
	for _, tol := range []float64{-1e-6, math.NaN(), math.Inf(1)} {
		if _, err := Drift(r, r, tol); err == nil || !strings.Contains(err.Error(), "tolerance") {
			t.Errorf("tol %v: error %v", tol, err)
		}
	}
}
