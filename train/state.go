package train

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/safetensors"
)

// StateSchema identifies the epoch checkpoints written by State.WriteFile.
const StateSchema = "dapobench/train-state/v1"

// Settings are what a run's numbers depend on; a run resumes only from a
// state with equal settings. The number of epochs is not among them: a
// finished run can be continued for more.
type Settings struct {
	Scheme  string `json:"scheme"`
	Variant string `json:"variant"`
	Dataset string `json:"dataset"`
	// Data is the sha256 of the training samples and their pixel classes.
	Data    string `json:"data_sha256"`
	Samples int    `json:"samples"`
	// Model is the sha256 of the model directory's model.json.
	Model string  `json:"model_sha256"`
	Batch int     `json:"batch"`
	LR    float64 `json:"lr"`
	Beta1 float64 `json:"beta1"`
	Beta2 float64 `json:"beta2"`
	Eps   float64 `json:"eps"`
	// WeightDecay is AdamW's (AdaCLIP); 0, and absent from the file, for
	// Adam.
	WeightDecay float64 `json:"weight_decay,omitempty"`
	Seed        uint64  `json:"seed"`
	// MaskRule is how the resized masks were read. States written before
	// it was recorded read masks with MaskThreshold and say so when read.
	MaskRule MaskRule `json:"mask_rule"`
	// AugRate is the mosaic rate (APRIL-GAN, MultiADS on MVTec-AD).
	AugRate float64 `json:"aug_rate,omitempty"`
}

// diff lists the fields of s that differ from o.
func (s Settings) diff(o Settings) []string {
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(o)
	var ma, mb map[string]any
	json.Unmarshal(a, &ma)
	json.Unmarshal(b, &mb)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(ma)) {
		if fmt.Sprint(ma[k]) != fmt.Sprint(mb[k]) {
			out = append(out, fmt.Sprintf("%s %v (now %v)", k, mb[k], ma[k]))
		}
	}
	return out
}

// EpochStats are one epoch's losses, means over its steps (the official
// trainers log means over batches), and its timing.
type EpochStats struct {
	Epoch   int       `json:"epoch"` // 1-based
	Loss    float64   `json:"loss"`
	Local   float64   `json:"loss_local"`
	Image   float64   `json:"loss_image"`
	Focal   float64   `json:"loss_focal"`
	Dice    float64   `json:"loss_dice"`
	Steps   []float64 `json:"step_losses"`
	Images  int       `json:"images"`
	Seconds float64   `json:"seconds"`
}

// State is everything a run needs to continue: the tensors, Adam's
// moments and step, and the history.
type State struct {
	Settings Settings
	// Epoch is the number of completed epochs.
	Epoch int
	// Tensors are every tensor of the scheme (those the variant does not
	// train keep their initial values).
	Tensors map[string]clip.Tensor
	Adam    *Adam
	History []EpochStats
	// Init is where the run's initial tensors came from when not from
	// the seed (Config.Init); a resumed run keeps it.
	Init *InitSource
}

type stateMeta struct {
	Settings Settings     `json:"settings"`
	Epoch    int          `json:"epoch"`
	AdamStep int          `json:"adam_step"`
	History  []EpochStats `json:"history"`
	Init     *InitSource  `json:"init,omitempty"`
}

// Tensor name prefixes inside a state file.
const (
	prefixParam = "param/"
	prefixM     = "adam.m/"
	prefixV     = "adam.v/"
)

// WriteFile writes the state as float32 safetensors, atomically.
func (s *State) WriteFile(path string) error {
	meta, err := json.Marshal(stateMeta{Settings: s.Settings, Epoch: s.Epoch, AdamStep: s.Adam.Step, History: s.History, Init: s.Init})
	if err != nil {
		return fmt.Errorf("train: state %s: %w", path, err)
	}
	var ts []safetensors.Tensor
	for _, k := range slices.Sorted(maps.Keys(s.Tensors)) {
		t := s.Tensors[k]
		ts = append(ts, safetensors.F32(prefixParam+k, t.Shape, t.Data))
		if m, ok := s.Adam.M[k]; ok {
			ts = append(ts, safetensors.F32(prefixM+k, t.Shape, m), safetensors.F32(prefixV+k, t.Shape, s.Adam.V[k]))
		}
	}
	if err := safetensors.WriteFile(path, ts, map[string]string{"schema": StateSchema, "state": string(meta)}); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// ReadState reads a file written by State.WriteFile and checks it.
func ReadState(path string) (*State, error) {
	s, err := readState(path)
	if err != nil {
		return nil, fmt.Errorf("train: state %s: %w", path, err)
	}
	return s, nil
}

func readState(path string) (*State, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	switch f.Metadata["schema"] {
	case StateSchema:
	case checkpoints.Schema:
		return nil, fmt.Errorf("a learned-tensor file (models import or train output), not an epoch checkpoint: it has no optimiser state to resume; start a run from its tensors with --init")
	default:
		return nil, fmt.Errorf("schema %q, want %q (not an epoch checkpoint of dapobench train)", f.Metadata["schema"], StateSchema)
	}
	var meta stateMeta
	if err := json.Unmarshal([]byte(f.Metadata["state"]), &meta); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if meta.Epoch < 0 || meta.AdamStep < 0 || len(meta.History) != meta.Epoch {
		return nil, fmt.Errorf("metadata: epoch %d, adam step %d, %d epochs of history", meta.Epoch, meta.AdamStep, len(meta.History))
	}
	if meta.Settings.MaskRule == "" {
		meta.Settings.MaskRule = MaskThreshold
	}
	if _, err := ParseMaskRule(string(meta.Settings.MaskRule)); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	s := &State{Settings: meta.Settings, Epoch: meta.Epoch, History: meta.History, Init: meta.Init, Tensors: map[string]clip.Tensor{}}
	s.Adam = &Adam{LR: meta.Settings.LR, Beta1: meta.Settings.Beta1, Beta2: meta.Settings.Beta2, Eps: meta.Settings.Eps,
		WeightDecay: meta.Settings.WeightDecay, Step: meta.AdamStep, M: map[string][]float32{}, V: map[string][]float32{}}
	moments := map[string]clip.Tensor{}
	for _, t := range f.Tensors {
		v, err := t.Float32()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		ct := clip.Tensor{Shape: t.Shape, Data: v}
		switch {
		case strings.HasPrefix(t.Name, prefixParam):
			s.Tensors[strings.TrimPrefix(t.Name, prefixParam)] = ct
		case strings.HasPrefix(t.Name, prefixM), strings.HasPrefix(t.Name, prefixV):
			moments[t.Name] = ct
		default:
			return nil, fmt.Errorf("unknown tensor %q", t.Name)
		}
	}
	for name, t := range moments {
		key, isM := strings.CutPrefix(name, prefixM)
		if !isM {
			key = strings.TrimPrefix(name, prefixV)
		}
		p, ok := s.Tensors[key]
		if !ok || !slices.Equal(p.Shape, t.Shape) {
			return nil, fmt.Errorf("moment %s has shape %v, the tensor %v", name, t.Shape, p.Shape)
		}
		if isM {
			s.Adam.M[key] = t.Data
		} else {
			s.Adam.V[key] = t.Data
		}
	}
	for k := range s.Adam.M {
		if s.Adam.V[k] == nil {
			return nil, fmt.Errorf("tensor %s has a first moment but no second", k)
		}
	}
	if len(s.Adam.V) != len(s.Adam.M) {
		return nil, fmt.Errorf("%d first moments, %d second", len(s.Adam.M), len(s.Adam.V))
	}
	l := &checkpoints.Learned{Scheme: s.Settings.Scheme, Tensors: s.Tensors}
	if _, err := l.Dims(); err != nil {
		return nil, err
	}
	return s, nil
}
