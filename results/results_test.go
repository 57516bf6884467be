package results

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sample() *Results {
	r := New("mvtec", "dapo", "ViT-L-14-336")
	r.Settings["aupro"] = string(metrics.AUPROCflow200)
	bottle := NewEntry()
	bottle.Set(ImageAUROC, metrics.Value{V: 0.984})
	bottle.Set(PixelAUPRO, metrics.Value{V: 0.875})
	bottle.Counts[NNormal], bottle.Counts[NAnomalous] = 20, 63
	toothbrush := NewEntry()
	toothbrush.Set(ImageAUROC, metrics.Value{V: 0.9})
	toothbrush.Set(PixelAUPRO, metrics.Value{V: math.NaN(), Reason: "no defect regions in the ground truth"})
	toothbrush.Counts[NNormal], toothbrush.Counts[NAnomalous] = 12, 30
	r.Categories["bottle"], r.Categories["toothbrush"] = bottle, toothbrush
	crack := NewEntry()
	crack.Set(PixelAUROC, metrics.Value{V: 0.5})
	crack.Counts[NCategories] = 2
	r.DefectTypes = map[string]*Entry{"crack": crack}
	r.ComputeMean()
	return r
}

func TestGolden(t *testing.T) {
	got, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "results.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("results.json changed; rerun with -update if intended:\n%s", got)
	}
}

func TestMean(t *testing.T) {
	r := sample()
	if v, ok := r.Mean.Get(ImageAUROC); !ok || math.Abs(v-0.942) > 1e-15 {
		t.Errorf("mean image AUROC = %v, %v", v, ok)
	}
	if v, ok := r.Mean.Get(PixelAUPRO); !ok || v != 0.875 || !strings.Contains(r.Mean.Notes[PixelAUPRO], "1 of 2 categories; undefined in toothbrush") {
		t.Errorf("mean AUPRO = %v, note %q", v, r.Mean.Notes[PixelAUPRO])
	}
	if r.Mean.Counts[NNormal] != 32 || r.Mean.Counts[NCategories] != 2 {
		t.Errorf("mean counts %v", r.Mean.Counts)
	}
	r.Categories["bottle"].Set(PixelAUPRO, metrics.Value{V: math.NaN(), Reason: "x"})
	r.ComputeMean()
	if _, ok := r.Mean.Get(PixelAUPRO); ok || r.Mean.Undefined[PixelAUPRO] == "" {
		t.Errorf("metric undefined everywhere has a mean")
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "results.json")
	want := sample()
	if err := Write(p, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := want.Marshal()
	b, _ := got.Marshal()
	if !bytes.Equal(a, b) {
		t.Errorf("round trip changed the file:\n%s\nvs\n%s", a, b)
	}
	if got.Categories["toothbrush"].Metrics[PixelAUPRO] != nil || got.Categories["toothbrush"].Undefined[PixelAUPRO] == "" {
		t.Error("null metric lost its reason")
	}
	// Overwrite, and no temporary files stay behind.
	if err := Write(p, want); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files after two writes", len(entries))
	}
}

func TestWriteRejects(t *testing.T) {
	p := filepath.Join(t.TempDir(), "results.json")
	r := sample()
	r.Categories["bottle"].Metrics[ImageAP] = nil // null without a reason
	if err := Write(p, r); err == nil || !strings.Contains(err.Error(), "without a reason") {
		t.Errorf("null without reason: %v", err)
	}
	r = sample()
	nan := math.NaN()
	r.Categories["bottle"].Metrics[ImageAP] = &nan
	if err := Write(p, r); err == nil {
		t.Error("NaN metric written")
	}
	r = sample()
	r.Schema = "other"
	if err := Write(p, r); err == nil {
		t.Error("wrong schema written")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Error("a failed write left a file")
	}
	if err := Write(filepath.Join(t.TempDir(), "missing", "results.json"), sample()); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestReadRejects(t *testing.T) {
	tests := []struct{ name, json, want string }{
		{"schema", `{"schema": "dapobench/results/v0"}`, "schema"},
		{"unknown key", `{"schema": "dapobench/results/v1", "dataset": "x", "extra": 1}`, "unknown field"},
		{"null without reason", `{"schema": "dapobench/results/v1", "categories": {"a": {"image_auroc": null}}}`, "without a reason"},
		{"string metric", `{"schema": "dapobench/results/v1", "categories": {"a": {"image_auroc": "high"}}}`, "image_auroc"},
		{"not json", `{`, "unexpected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "results.json")
			os.WriteFile(p, []byte(tc.json), 0o644)
			_, err := Read(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %v, want one naming %s and mentioning %q", err, p, tc.want)
			}
		})
	}
}
