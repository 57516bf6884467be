package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/internal/benchflag"
	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/internal/cliflag"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/results"
	"github.com/dapobench/dapobench/schemes"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench run", stderr)
	var d benchflag.Dataset
	d.Register(fs)
	modelDir := fs.String("model", "", "model directory (dapobench models build or models tiny)")
	scheme := cliflag.String(fs, "scheme", "", "prompt scheme: "+strings.Join(schemes.Names(), ", "), func(s string) error { _, err := schemes.Lookup(s); return err })
	variant := fs.String("variant", "", "named variant of the scheme (see -list-variants)")
	listVariants := fs.Bool("list-variants", false, "list the variants of --scheme and exit")
	prompts := fs.String("prompts", "", "learned prompt tensors (dapobench models import); default: untrained, seeded")
	seed := fs.Uint64("seed", 1, "seed of untrained prompt tensors")
	words := fs.String("words", "", "defect words, comma-separated, instead of the dataset's vocabulary")
	device := benchflag.Device(fs)
	threads := benchflag.Threads(fs)
	out := fs.String("out", "", "run directory (default runs/<dataset>-<scheme or variant>[-<each setting that is not the default>])")
	cacheDir := fs.String("cache", featcache.DefaultDir(), "feature cache directory (\"\" disables the cache)")
	aupro := benchflag.AUPRO(fs)
	batch := cliflag.AtLeast(fs, "batch", 0, 0, "images per image-tower run (0: 1 on the CPU, 8 on a GPU)")
	saveMaps := fs.Bool("save-maps", false, "write every anomaly map as .npy under RUNDIR/maps")
	quiet := fs.Bool("quiet", false, "no progress output")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "scheme"); err != nil {
		return err
	}
	spec, err := schemes.Lookup(*scheme)
	if err != nil {
		return err
	}
	if *listVariants {
		return spec.WriteVariants(stdout)
	}
	if err := cli.Require(fs, "dataset", "root", "model"); err != nil {
		return err
	}
	if err := spec.CheckVariant(*variant); err != nil {
		return err
	}
	o := schemes.Options{Variant: *variant, Prompts: *prompts, Seed: *seed}
	if *words != "" {
		if o.Words, err = schemes.ParseWords(*words); err != nil {
			return err
		}
	}
	av, _ := metrics.ParseAUPROVariant(*aupro)
	if *out == "" {
		name := *scheme
		if *variant != "" {
			name = *variant
		}
		if *out, err = bench.DefaultOut(bench.OutName{Dataset: d.ID, Scheme: name, Model: *modelDir, Prompts: *prompts,
			Seed: *seed, Words: o.Words, AUPRO: *aupro, Loader: d.Options()}); err != nil {
			return err
		}
	}
	var progress io.Writer = stderr
	if *quiet {
		progress = nil
	}

	start := time.Now()
	rt, err := runner.Open(runner.Options{Device: *device, Threads: *threads})
	if err != nil {
		return err
	}
	defer rt.Close()
	cache, textCache, err := bench.OpenCaches(*cacheDir)
	if err != nil {
		return err
	}
	// Graphs load at their first cache miss: a run over cached features
	// and prompts never loads the towers.
	m, err := bench.OpenModelWith(ctx, rt, *modelDir, bench.OpenOptions{Lazy: true, TextCache: textCache, HashMemo: bench.HashMemoDir(*cacheDir)})
	if err != nil {
		return err
	}
	defer m.Close()
	s, err := spec.Build(m, o)
	if err != nil {
		return err
	}
	cfg := bench.Config{Dataset: d.ID, Loader: d.Options(), Model: m, Scheme: s, Out: *out, Cache: cache,
		AUPRO: av, Batch: *batch, SaveMaps: *saveMaps, Progress: progress, PromptsFile: *prompts}
	cats, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	res, err := bench.Finish(cfg, rt, cats, start)
	if err != nil {
		return err
	}
	reports.Summary(stdout, res)
	fmt.Fprintf(stdout, "\nwrote %s (%s, %s)\n", filepath.Join(*out, results.FileName), s.Settings()["prompts"], rt.Provider())
	return nil
}
