package main

import (
	"fmt"
	"strings"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/dapo"
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
	variants func() [][2]string
	build    func(m *bench.Model, o schemeOptions) (bench.Scheme, error)
}

// schemes is the explicit registry of prompt schemes.
func schemes() []schemeSpec {
	return []schemeSpec{
		{"dapo", dapo.VariantNames, buildDAPO},
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
			return nil, err
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
	opt, err := dapo.WithVariant(o.variant, dapo.Options{Learned: l, Words: o.words})
	if err != nil {
		return nil, err
	}
	return dapo.New(opt)
}
