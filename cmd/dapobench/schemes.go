package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dapobench/dapobench/baselines/anomalyclip"
	"github.com/dapobench/dapobench/baselines/winclip"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/dapo"
	"github.com/dapobench/dapobench/train"
)

// schemeOptions are the command-line choices every scheme understands.
type schemeOptions struct {
	variant string
	prompts string   // learned tensors (models import); "" = untrained
	seed    uint64   // seed of untrained tensors
	words   []string // defect vocabulary override
}

// schemeSpec builds one scheme from the opened model.
type schemeSpec struct {
	name     string
	variants func() []bench.Variant
	build    func(m *bench.Model, o schemeOptions) (bench.Scheme, error)
}

// schemes is the explicit registry of prompt schemes.
func schemes() []schemeSpec {
	return []schemeSpec{
		{"dapo", dapo.Variants, buildDAPO},
		{"winclip", winclip.Variants, buildWinCLIP},
		{"anomalyclip", anomalyclip.Variants, buildAnomalyCLIP},
	}
}

func lookupScheme(name string) (schemeSpec, error) {
	var names []string
	for _, s := range schemes() {
		if s.name == name {
			return s, nil
		}
		names = append(names, s.name)
	}
	return schemeSpec{}, fmt.Errorf("%w: unknown scheme %q; valid: %s", errUsage, name, strings.Join(names, ", "))
}

// learned reads imported tensors, or draws the untrained ones as the
// official code initialises them.
func learned(scheme string, m *bench.Model, o schemeOptions) (*checkpoints.Learned, error) {
	if o.prompts != "" {
		l, err := checkpoints.ReadFile(o.prompts)
		if err != nil {
			// An epoch checkpoint of dapobench train holds the tensors
			// too, beside the optimiser state.
			st, serr := train.ReadState(o.prompts)
			if serr != nil {
				return nil, err
			}
			l = st.Learned(filepath.Base(o.prompts))
		}
		if l.Scheme != scheme {
			return nil, fmt.Errorf("%s holds %s tensors, not %s", o.prompts, l.Scheme, scheme)
		}
		return l, l.Check(m.Manifest)
	}
	return checkpoints.Untrained(scheme, m.Manifest, m.TokenEmbedding, o.seed)
}

func buildDAPO(m *bench.Model, o schemeOptions) (bench.Scheme, error) {
	l, err := learned(checkpoints.DAPO, m, o)
	if err != nil {
		return nil, err
	}
	opt, err := dapo.Parse(o.variant, dapo.Options{Learned: l, Words: o.words})
	if err != nil {
		return nil, err
	}
	return dapo.New(opt)
}

func buildWinCLIP(m *bench.Model, o schemeOptions) (bench.Scheme, error) {
	if o.prompts != "" {
		return nil, fmt.Errorf("%w: winclip has no learned prompts; --prompts does not apply", errUsage)
	}
	if o.words != nil {
		return nil, fmt.Errorf("%w: winclip uses its prompt ensemble; --words does not apply", errUsage)
	}
	opt, err := winclip.Parse(o.variant, winclip.Options{})
	if err != nil {
		return nil, err
	}
	return winclip.New(opt)
}

func buildAnomalyCLIP(m *bench.Model, o schemeOptions) (bench.Scheme, error) {
	if o.words != nil {
		return nil, fmt.Errorf("%w: anomalyclip's prompts are object-agnostic; --words does not apply", errUsage)
	}
	l, err := learned(checkpoints.AnomalyCLIP, m, o)
	if err != nil {
		return nil, err
	}
	opt, err := anomalyclip.Parse(o.variant, anomalyclip.Options{Learned: l})
	if err != nil {
		return nil, err
	}
	return anomalyclip.New(opt)
}
