package train

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dapobench/dapobench/internal/atomicfile"
	"gonum.org/v1/plot/vg"
)

// Outputs are the files of a training run, named after its output
// FILE.safetensors: FILE.epochN.safetensors checkpoints, FILE.loss.png and
// FILE.train.json.
type Outputs struct {
	Learned, Base, Plot, Manifest string
}

// OutputsOf names the files of a run writing learned.
func OutputsOf(learned string) Outputs {
	base := strings.TrimSuffix(learned, ".safetensors")
	return Outputs{Learned: learned, Base: base, Plot: base + ".loss.png", Manifest: base + ".train.json"}
}

// Epoch is the checkpoint of epoch n.
func (o Outputs) Epoch(n int) string { return fmt.Sprintf("%s.epoch%d.safetensors", o.Base, n) }

// ManifestSchema identifies the train manifest format.
const ManifestSchema = "dapobench/train-manifest/v1"

// Manifest records how a training run was made: versions, settings,
// the loss of every epoch and step, timings. It is rewritten after each
// epoch.
type Manifest struct {
	Schema       string       `json:"schema"`
	Dapobench    string       `json:"dapobench"`
	Go           string       `json:"go"`
	ORT          string       `json:"onnxruntime"`
	Provider     string       `json:"execution_provider"`
	Threads      int          `json:"threads"`
	ModelDir     string       `json:"model_dir"`
	Dataset      string       `json:"dataset"`
	Root         string       `json:"root"`
	Scheme       string       `json:"scheme"`
	Variant      string       `json:"variant"`
	Layers       []int        `json:"layers"`
	Classes      int          `json:"classes"`
	Learned      []string     `json:"learned_tensors"`
	Recipe       RecipeJSON   `json:"recipe"`
	MaskRule     string       `json:"mask_rule"`
	Samples      int          `json:"samples"`
	Init         string       `json:"init"`
	InitFrom     *InitSource  `json:"init_from,omitempty"` // --init's file, kept by a resumed run
	Started      string       `json:"started"`
	Seconds      float64      `json:"seconds"`
	Epochs       []EpochStats `json:"epochs"`
	Checkpoints  []string     `json:"checkpoints"`
	Output       string       `json:"output"`
	OutputSHA256 string       `json:"output_tensors_sha256,omitempty"`
	Finished     bool         `json:"finished"`
}

// RecipeJSON is the recipe as the manifest records it.
type RecipeJSON struct {
	Epochs int     `json:"epochs"`
	Batch  int     `json:"batch"`
	LR     float64 `json:"lr"`
	Beta1  float64 `json:"beta1"`
	Beta2  float64 `json:"beta2"`
	Eps    float64 `json:"eps"`
	// WeightDecay is AdamW's decay (AdaCLIP); absent for Adam.
	WeightDecay float64 `json:"weight_decay,omitempty"`
	Seed        uint64  `json:"seed"`
	// AugRate is the mosaic rate, 0 without mosaics.
	AugRate float64 `json:"aug_rate,omitempty"`
}

// WriteReport writes the manifest and the loss plot, each atomically.
func WriteReport(o Outputs, mf *Manifest, title string) error {
	b, err := json.MarshalIndent(mf, "", "  ")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := atomicfile.WriteFile(o.Manifest, append(b, '\n')); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	p, err := LossPlot(title+": training loss", mf.Epochs)
	if err != nil {
		return err
	}
	png, err := PNG(p, 6*vg.Inch, 4*vg.Inch)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(o.Plot, png); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}
