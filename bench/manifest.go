package bench

import (
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	"github.com/dapobench/dapobench/bench/preprocess"
	"github.com/dapobench/dapobench/internal/version"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/results"
)

// Manifest records how a run was made: versions, hashes, settings and
// timings (manifest.json). Unlike results.json it is expected to differ
// between runs of the same configuration.
type Manifest struct {
	Schema      string            `json:"schema"`
	Dapobench   string            `json:"dapobench"`
	Go          string            `json:"go"`
	ORT         string            `json:"onnxruntime"`
	Provider    string            `json:"execution_provider"`
	Threads     int               `json:"threads"`
	JPEGDecoder string            `json:"jpeg_decoder"`
	Model       string            `json:"model"`
	ModelDir    string            `json:"model_dir"`
	ImageHash   string            `json:"image_tower_sha256"`
	ModelHash   string            `json:"model_sha256"`
	WeightsHash string            `json:"weights_sha256,omitempty"`
	Dataset     string            `json:"dataset"`
	Root        string            `json:"root"`
	Scheme      string            `json:"scheme"`
	Settings    map[string]string `json:"settings"`
	Started     string            `json:"started"`
	Seconds     float64           `json:"seconds"`
	Categories  []CategoryTiming  `json:"categories"`
}

// ManifestSchema identifies the manifest format.
const ManifestSchema = results.ManifestSchema

// CategoryTiming is one category's line in the manifest.
type CategoryTiming struct {
	Category    string  `json:"category"`
	Fingerprint string  `json:"fingerprint"`
	Seconds     float64 `json:"seconds"`
	Computed    int     `json:"features_computed"`
	Cached      int     `json:"features_cached"`
}

// Finish writes a run's manifest.json and then its results.json, and
// returns the results. results.json is written last, and Run removed both
// when it started, so a run directory that has them is complete
// (results.CheckComplete).
func Finish(cfg Config, rt *runner.Runtime, cats []results.CategoryRecord, started time.Time) (*results.Results, error) {
	m := cfg.Model
	mf := Manifest{
		Schema: ManifestSchema, Dapobench: version.String(), Go: runtime.Version(),
		ORT: rt.Version(), Provider: rt.Provider(), Threads: rt.Threads(), JPEGDecoder: preprocess.JPEGDecoder,
		Model: m.Name(), ModelDir: m.Dir, ImageHash: m.ImageHash, ModelHash: m.Hash, WeightsHash: m.Manifest.Weights.SHA256,
		Dataset: cfg.Dataset, Root: cfg.Loader.Root, Scheme: cfg.Scheme.Name(), Settings: cfg.Scheme.Settings(),
		Started: started.UTC().Format(time.RFC3339), Seconds: time.Since(started).Seconds(),
	}
	for _, c := range cats {
		mf.Categories = append(mf.Categories, CategoryTiming{c.Category, c.Fingerprint, c.Seconds, c.Computed, c.Cached})
	}
	if err := writeJSON(filepath.Join(cfg.Out, results.ManifestName), mf); err != nil {
		return nil, err
	}
	res := Results(cfg, m.Name(), cats)
	if err := results.Write(filepath.Join(cfg.Out, results.FileName), res); err != nil {
		return nil, err
	}
	return res, nil
}

// Name describes the model for results: architecture, variant, image size
// and where the weights came from.
func (m *Model) Name() string {
	man := m.Manifest
	src := man.Weights.File
	if man.Weights.Seed != nil {
		src = fmt.Sprintf("seeded weights %d", *man.Weights.Seed)
	}
	return fmt.Sprintf("%s %s@%d (%s)", man.Arch.Name, man.Variant, man.ImageSize, src)
}
