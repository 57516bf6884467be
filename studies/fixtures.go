package studies

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/study"
)

// RunFixtures runs the fixture study (Fixtures) afresh in the study folder
// out: it writes the fixtures with seed, builds the tiny models from the
// same seed, trains the prompts, evaluates every method on every dataset
// and writes RESULTS.md in the paper's layout, running as many jobs at
// once as there are CPUs. It prints the line that says what runs on w and
// the progress on log (nil for none), and returns the study's job graph.
func RunFixtures(ctx context.Context, out string, seed uint64, w, log io.Writer) (*study.Graph, error) {
	// It always computes afresh: the study's fingerprints cover its plan,
	// not the code that runs it.
	for _, sub := range []string{"data", "models", "train", "runs", "jobs", "cache", "plans", study.GraphFile, study.ResultsFile} {
		if err := os.RemoveAll(filepath.Join(out, sub)); err != nil {
			return nil, err
		}
	}
	dir, err := Write(filepath.Join(out, "plans"))
	if err != nil {
		return nil, err
	}
	p, err := study.ParsePlan(filepath.Join(dir, Fixtures))
	if err != nil {
		return nil, err
	}
	p.Fixtures = &seed
	for i := range p.Models {
		p.Models[i].Seed = seed
	}
	fmt.Fprintf(w, "== the fixture study (%s): synthetic fixtures, tiny seeded models, in %s\n", Fixtures, out)
	g, err := study.MakeGraph(ctx, p, study.PlanOptions{Out: out})
	if err != nil {
		return nil, err
	}
	// One runtime decides the device, so that auto's fallback warning is
	// printed once and not by every job.
	device, err := runner.ResolveDevice(runner.Options{Device: "auto"})
	if err != nil {
		return nil, err
	}
	if err := study.Run(ctx, out, study.RunOptions{Jobs: runtime.GOMAXPROCS(0), Device: device, Log: log}); err != nil {
		return nil, err
	}
	return g, nil
}
