// Package schemes is the registry of prompt schemes: how a scheme name,
// a variant and the common options (learned tensors, seed, vocabulary)
// become a bench.Scheme on an opened model. The CLI and study runner both
// build schemes through it.
package schemes

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dapobench/dapobench/baselines/adaclip"
	"github.com/dapobench/dapobench/baselines/anomalyclip"
	"github.com/dapobench/dapobench/baselines/aprilgan"
	"github.com/dapobench/dapobench/baselines/multiads"
	"github.com/dapobench/dapobench/baselines/winclip"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/dapo"
	"github.com/dapobench/dapobench/train"
)

// ErrOption marks a scheme name or option that does not apply: a usage
// error, not a problem with the data.
var ErrOption = errors.New("invalid scheme option")

// Options are the choices every scheme understands.
type Options struct {
	Variant string   // "" is the scheme itself
	Prompts string   // learned tensors (models import, train); "" = untrained
	Seed    uint64   // seed of untrained tensors
	Words   []string // defect vocabulary override
}

// Spec builds one scheme from an opened model.
type Spec struct {
	Name     string
	Variants func() []bench.Variant
	Build    func(m *bench.Model, o Options) (bench.Scheme, error)
}

// All is the explicit registry of prompt schemes.
func All() []Spec {
	return []Spec{
		{"dapo", dapo.Variants, buildDAPO},
		{"winclip", winclip.Variants, buildWinCLIP},
		{"anomalyclip", anomalyclip.Variants, buildAnomalyCLIP},
		{"adaclip", adaclip.Variants, buildAdaCLIP},
		{"aprilgan", aprilgan.Variants, buildAPRILGAN},
		{"multiads", multiads.Variants, buildMultiADS},
	}
}

// Names lists the scheme names.
func Names() []string {
	var n []string
	for _, s := range All() {
		n = append(n, s.Name)
	}
	return n
}

// Lookup finds a scheme by name.
func Lookup(name string) (Spec, error) {
	for _, s := range All() {
		if s.Name == name {
			return s, nil
		}
	}
	return Spec{}, fmt.Errorf("%w: unknown scheme %q; valid: %s", ErrOption, name, strings.Join(Names(), ", "))
}

// Learned reads imported tensors, or draws the untrained ones as the
// official code initialises them.
func Learned(scheme string, m *bench.Model, o Options) (*checkpoints.Learned, error) {
	if o.Prompts != "" {
		l, err := checkpoints.ReadFile(o.Prompts)
		if err != nil {
			// An epoch checkpoint of dapobench train holds the tensors
			// too, beside the optimiser state.
			st, serr := train.ReadState(o.Prompts)
			if serr != nil {
				return nil, err
			}
			l = st.Learned(filepath.Base(o.Prompts))
		}
		if l.Scheme != scheme {
			return nil, fmt.Errorf("%s holds %s tensors, not %s", o.Prompts, l.Scheme, scheme)
		}
		return l, l.Check(m.Manifest)
	}
	return checkpoints.Untrained(scheme, m.Manifest, m.TokenEmbedding, o.Seed)
}

func buildDAPO(m *bench.Model, o Options) (bench.Scheme, error) {
	l, err := Learned(checkpoints.DAPO, m, o)
	if err != nil {
		return nil, err
	}
	opt, err := dapo.Parse(o.Variant, dapo.Options{Learned: l, Words: o.Words})
	if err != nil {
		return nil, err
	}
	return dapo.New(opt)
}

func buildWinCLIP(m *bench.Model, o Options) (bench.Scheme, error) {
	if o.Prompts != "" {
		return nil, fmt.Errorf("%w: winclip has no learned prompts; --prompts does not apply", ErrOption)
	}
	if o.Words != nil {
		return nil, fmt.Errorf("%w: winclip uses its prompt ensemble; --words does not apply", ErrOption)
	}
	opt, err := winclip.Parse(o.Variant, winclip.Options{})
	if err != nil {
		return nil, err
	}
	return winclip.New(opt)
}

func buildAnomalyCLIP(m *bench.Model, o Options) (bench.Scheme, error) {
	if o.Words != nil {
		return nil, fmt.Errorf("%w: anomalyclip's prompts are object-agnostic; --words does not apply", ErrOption)
	}
	l, err := Learned(checkpoints.AnomalyCLIP, m, o)
	if err != nil {
		return nil, err
	}
	opt, err := anomalyclip.Parse(o.Variant, anomalyclip.Options{Learned: l})
	if err != nil {
		return nil, err
	}
	return anomalyclip.New(opt)
}

func buildAdaCLIP(m *bench.Model, o Options) (bench.Scheme, error) {
	if o.Words != nil {
		return nil, fmt.Errorf("%w: adaclip builds its sentences from the category name; --words does not apply", ErrOption)
	}
	l, err := Learned(checkpoints.AdaCLIP, m, o)
	if err != nil {
		return nil, err
	}
	opt, err := adaclip.Parse(o.Variant, adaclip.Options{Learned: l})
	if err != nil {
		return nil, err
	}
	return adaclip.New(opt)
}

func buildAPRILGAN(m *bench.Model, o Options) (bench.Scheme, error) {
	if o.Words != nil {
		return nil, fmt.Errorf("%w: aprilgan uses its prompt ensemble; --words does not apply", ErrOption)
	}
	l, err := Learned(checkpoints.APRILGAN, m, o)
	if err != nil {
		return nil, err
	}
	opt, err := aprilgan.Parse(o.Variant, aprilgan.Options{Learned: l})
	if err != nil {
		return nil, err
	}
	return aprilgan.New(opt)
}

func buildMultiADS(m *bench.Model, o Options) (bench.Scheme, error) {
	if o.Words != nil {
		return nil, fmt.Errorf("%w: multiads uses its defect-aware prompt ensembles; --words does not apply", ErrOption)
	}
	l, err := Learned(checkpoints.MultiADS, m, o)
	if err != nil {
		return nil, err
	}
	opt, err := multiads.Parse(o.Variant, multiads.Options{Learned: l})
	if err != nil {
		return nil, err
	}
	return multiads.New(opt)
}
