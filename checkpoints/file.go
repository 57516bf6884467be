package checkpoints

import (
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"

	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/safetensors"
)

// Schema identifies the safetensors files written by WriteFile; it is the
// "schema" entry of their metadata.
const Schema = "dapobench/learned/v1"

// Metadata keys of a learned-tensor file. Every value is a string, as
// safetensors requires.
const (
	metaSchema  = "schema"
	metaScheme  = "scheme"
	metaTrained = "trained"       // "true" or "false"
	metaSource  = "source"        // checkpoint base name (trained)
	metaSHA256  = "source_sha256" // its hex sha256 (trained)
	metaSeed    = "seed"          // decimal seed (untrained)
	metaShapes  = "shapes"        // "name [d0 d1 …]; …", for people reading the header
)

// WriteFile writes l as float32 safetensors with its provenance in the
// metadata, through a temporary file and a rename, after checking that
// its tensors are complete and consistent.
func (l *Learned) WriteFile(path string) error {
	if err := l.validate(); err != nil {
		return fmt.Errorf("checkpoints: write %s: %w", path, err)
	}
	meta := map[string]string{
		metaSchema:  Schema,
		metaScheme:  l.Scheme,
		metaTrained: strconv.FormatBool(l.Trained),
		metaShapes:  shapesSummary(l.Tensors),
	}
	if l.Trained {
		meta[metaSource], meta[metaSHA256] = l.Source, l.SourceSHA256
	} else {
		meta[metaSeed] = strconv.FormatUint(l.Seed, 10)
	}
	ts := make([]safetensors.Tensor, 0, len(l.Tensors))
	for _, k := range slices.Sorted(maps.Keys(l.Tensors)) {
		t := l.Tensors[k]
		ts = append(ts, safetensors.F32(k, t.Shape, t.Data))
	}
	if err := safetensors.WriteFile(path, ts, meta); err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	return nil
}

// ReadFile reads a file written by WriteFile and validates it: schema,
// scheme, provenance, and every tensor's name and shape.
func ReadFile(path string) (*Learned, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	l, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	return l, nil
}

func parse(data []byte) (*Learned, error) {
	f, err := safetensors.Parse(data)
	if err != nil {
		return nil, err
	}
	meta := f.Metadata
	if meta[metaSchema] != Schema {
		return nil, fmt.Errorf("metadata schema %q, want %q (not a file written by dapobench models import)", meta[metaSchema], Schema)
	}
	l := &Learned{Scheme: meta[metaScheme], Tensors: map[string]clip.Tensor{}}
	if l.Trained, err = strconv.ParseBool(meta[metaTrained]); err != nil {
		return nil, fmt.Errorf("metadata trained = %q, want true or false", meta[metaTrained])
	}
	if l.Trained {
		l.Source, l.SourceSHA256 = meta[metaSource], meta[metaSHA256]
	} else if l.Seed, err = strconv.ParseUint(meta[metaSeed], 10, 64); err != nil {
		return nil, fmt.Errorf("metadata seed = %q of untrained tensors, want an unsigned integer", meta[metaSeed])
	}
	for _, t := range f.Tensors {
		if t.DType != "F32" {
			return nil, fmt.Errorf("tensor %s has dtype %s, want F32", t.Name, t.DType)
		}
		v, err := t.Float32()
		if err != nil {
			return nil, err
		}
		l.Tensors[t.Name] = clip.Tensor{Shape: t.Shape, Data: v}
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	return l, nil
}

// validate checks the provenance fields and the tensors.
func (l *Learned) validate() error {
	if _, err := variant(l.Scheme); err != nil {
		return err
	}
	if l.Trained {
		if l.Source == "" {
			return fmt.Errorf("trained %s tensors without a source file name", l.Scheme)
		}
		if b, err := hex.DecodeString(l.SourceSHA256); err != nil || len(b) != 32 {
			return fmt.Errorf("source sha256 %q of %s is not 64 hex digits", l.SourceSHA256, l.Source)
		}
	}
	_, err := l.Dims()
	return err
}
