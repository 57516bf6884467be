package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/safetensors"
)

// Init is a run's starting point other than the seeded tensors: the
// tensors of a published checkpoint to fine-tune, or of another run to
// continue with a different recipe. Only the tensors are taken; Adam
// starts afresh (resuming with the optimiser state is Trainer.Resume).
type Init struct {
	Learned *checkpoints.Learned
	From    InitSource
}

// The kinds of file Init reads.
const (
	// InitLearned is a learned-tensor file: models import output (an
	// official checkpoint converted) or the final file of a train run.
	InitLearned = "learned"
	// InitEpochCheckpoint is an epoch checkpoint of dapobench train,
	// read for its tensors alone.
	InitEpochCheckpoint = "epoch-checkpoint"
)

// InitSource is the provenance of an Init, recorded in epoch checkpoints
// and the train manifest.
type InitSource struct {
	Kind   string `json:"kind"` // InitLearned or InitEpochCheckpoint
	Path   string `json:"path"`
	SHA256 string `json:"sha256"` // of the file's bytes
	Scheme string `json:"scheme"`
	// Tensors is what the file says of its tensors: Learned.Label for a
	// learned-tensor file ("trained (epoch_1.pth, sha256 …)"), the run's
	// settings and epoch for an epoch checkpoint.
	Tensors string `json:"tensors"`
	// TensorsSHA256 is the sha256 of the tensors themselves (names,
	// shapes, float32 bytes), as the train output records its own.
	TensorsSHA256 string `json:"tensors_sha256"`
}

// ReadInit reads the tensors of a learned-tensor file or an epoch
// checkpoint. An official .pth must be converted first (models import):
// its sizes cannot be checked without a model directory.
func ReadInit(path string) (*Init, error) {
	in, err := readInit(path)
	if err != nil {
		return nil, fmt.Errorf("train: init %s: %w", path, err)
	}
	return in, nil
}

func readInit(path string) (*Init, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Parse(data)
	if err != nil {
		// torch.save writes a zip archive (before torch 1.6, a pickle).
		if bytes.HasPrefix(data, []byte("PK\x03\x04")) || bytes.HasPrefix(data, []byte{0x80, 0x02}) {
			return nil, fmt.Errorf("a torch checkpoint, not a learned-tensor file: convert it first with dapobench models import --scheme S --checkpoint %s --model DIR --out FILE.safetensors", path)
		}
		return nil, fmt.Errorf("not a learned-tensor file or an epoch checkpoint: %w", err)
	}
	src := InitSource{Path: path, SHA256: sha256Hex(data)}
	var l *checkpoints.Learned
	switch schema := f.Metadata["schema"]; schema {
	case checkpoints.Schema:
		if l, err = checkpoints.ReadFile(path); err != nil {
			return nil, err
		}
		src.Kind, src.Tensors = InitLearned, l.Label()
	case StateSchema:
		s, err := readState(path)
		if err != nil {
			return nil, err
		}
		l = s.Learned(filepath.Base(path))
		src.Kind = InitEpochCheckpoint
		src.Tensors = fmt.Sprintf("%s on %s after epoch %d (batch %d, lr %g, seed %d, mask rule %s)",
			s.Settings.Variant, s.Settings.Dataset, s.Epoch, s.Settings.Batch, s.Settings.LR, s.Settings.Seed, s.Settings.MaskRule)
	default:
		return nil, fmt.Errorf("metadata schema %q: want a learned-tensor file (%q: models import or train output) or an epoch checkpoint (%q)",
			schema, checkpoints.Schema, StateSchema)
	}
	src.Scheme = l.Scheme
	src.TensorsSHA256 = learnedOf(&State{Settings: Settings{Scheme: l.Scheme}, Tensors: l.Tensors}, "").SourceSHA256
	return &Init{Learned: l, From: src}, nil
}

// tensors checks the init against the run (its scheme, the model's
// sizes) and returns a copy of its tensors.
func (in *Init) tensors(scheme string, m *clip.Manifest, modelDir string) (map[string]clip.Tensor, error) {
	if in.Learned == nil {
		return nil, fmt.Errorf("train: init %s: no tensors", in.From.Path)
	}
	if in.Learned.Scheme != scheme {
		return nil, fmt.Errorf("train: init %s holds %s tensors; this run trains %s", in.From.Path, in.Learned.Scheme, scheme)
	}
	if err := in.Learned.Check(m); err != nil {
		return nil, fmt.Errorf("train: init %s does not fit the model %s: %w", in.From.Path, modelDir, err)
	}
	out := map[string]clip.Tensor{}
	for _, k := range slices.Sorted(maps.Keys(in.Learned.Tensors)) {
		t := in.Learned.Tensors[k]
		out[k] = clip.Tensor{Shape: slices.Clone(t.Shape), Data: slices.Clone(t.Data)}
	}
	return out, nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
