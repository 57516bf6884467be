package study

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/results"
	"github.com/dapobench/dapobench/schemes"
	"github.com/dapobench/dapobench/train"
)

// CacheDir is the study's feature cache, shared by its evaluations.
const CacheDir = "cache"

// RunOptions configure Run.
type RunOptions struct {
	// Jobs is how many jobs run at once (0: 1).
	Jobs int
	// Job runs this one job (a number or an id) and nothing else: what
	// an array task on a cluster runs. Its dependencies must be done.
	Job string
	// Device is auto, cpu, cuda or cuda:N.
	Device string
	// Log receives one line per job that starts, ends or is skipped;
	// with Job set, also the job's own progress. nil is silent.
	Log io.Writer
}

// ErrJobs is matched by the error of a run in which some job failed.
var ErrJobs = errors.New("study: jobs failed")

// Run executes a study's jobs that are not done: all of them, in
// dependency order with up to Jobs at once, or the one Job. A job whose
// done record has its fingerprint is skipped; a job that fails leaves a
// failed record, and the jobs that depend on it do not start.
func Run(ctx context.Context, dir string, o RunOptions) error {
	g, err := ReadGraph(dir)
	if err != nil {
		return err
	}
	if o.Jobs <= 0 {
		o.Jobs = 1
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	threads := max(1, runtime.GOMAXPROCS(0)/o.Jobs)
	ex := &executor{g: g, device: o.Device, threads: threads}
	defer ex.close()
	if o.Job != "" {
		j, err := g.Job(o.Job)
		if err != nil {
			return err
		}
		if g.Done(j) {
			fmt.Fprintf(log, "%s: done earlier (fingerprint %s)\n", j.ID, j.Fingerprint)
			return nil
		}
		for _, d := range j.Deps {
			if dj := g.Jobs[d]; !g.Done(dj) {
				return fmt.Errorf("study: job %s needs %s, which is not done (dapobench study status %s)", j.ID, dj.ID, dir)
			}
		}
		return ex.run(ctx, j, log)
	}
	return ex.runAll(ctx, o.Jobs, log)
}

// executor runs jobs in one process; they share one onnxruntime.
type executor struct {
	g       *Graph
	device  string
	threads int

	mu  sync.Mutex
	rt  *runner.Runtime
	err error
}

func (ex *executor) runtime() (*runner.Runtime, error) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.rt == nil && ex.err == nil {
		ex.rt, ex.err = runner.Open(runner.Options{Device: ex.device, Threads: ex.threads})
	}
	return ex.rt, ex.err
}

func (ex *executor) close() {
	if ex.rt != nil {
		ex.rt.Close()
	}
}

// runAll schedules every job that is not done.
func (ex *executor) runAll(ctx context.Context, parallel int, log io.Writer) error {
	g := ex.g
	const (
		pending = iota
		running
		ok
		failed
		blocked
	)
	state := make([]int, len(g.Jobs))
	todo := 0
	for i, j := range g.Jobs {
		if g.Done(j) {
			state[i] = ok
		} else {
			todo++
		}
	}
	fmt.Fprintf(log, "study %s: %d jobs, %d done earlier, %d to run, %d at once\n", g.Name, len(g.Jobs), len(g.Jobs)-todo, todo, parallel)
	type result struct {
		n   int
		err error
		sec float64
	}
	results := make(chan result)
	active, finished := 0, 0
	var failures []string
	for {
		// Start what can start, in number order.
		for i, j := range g.Jobs {
			if active >= parallel || ctx.Err() != nil {
				break
			}
			if state[i] != pending {
				continue
			}
			ready := true
			for _, d := range j.Deps {
				switch state[d] {
				case ok:
				case failed, blocked:
					state[i], ready = blocked, false
					failures = append(failures, fmt.Sprintf("%s: not run, %s did not finish", j.ID, g.Jobs[d].ID))
				default:
					ready = false
				}
				if !ready {
					break
				}
			}
			if !ready {
				continue
			}
			state[i] = running
			active++
			go func(j *Job) {
				start := time.Now()
				err := ex.run(ctx, j, nil)
				results <- result{j.N, err, time.Since(start).Seconds()}
			}(j)
		}
		if active == 0 {
			break
		}
		r := <-results
		active--
		finished++
		j := g.Jobs[r.n]
		if r.err != nil {
			state[r.n] = failed
			failures = append(failures, fmt.Sprintf("%s: %v", j.ID, r.err))
			fmt.Fprintf(log, "[%d/%d] FAILED %s (%.1fs): %v\n", finished, todo, j.ID, r.sec, r.err)
			continue
		}
		state[r.n] = ok
		fmt.Fprintf(log, "[%d/%d] done %s (%.1fs)\n", finished, todo, j.ID, r.sec)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(failures) > 0 {
		return fmt.Errorf("%w: %d of %d:\n  %s", ErrJobs, len(failures), todo, strings.Join(failures, "\n  "))
	}
	return nil
}

// run runs one job with its records: running, then done or failed. The
// job's log goes to its log.txt (appended to, so that a resumed attempt
// follows the one it resumes) and to log, if not nil.
func (ex *executor) run(ctx context.Context, j *Job, log io.Writer) error {
	g := ex.g
	prev := g.previous(j)
	rec, err := g.begin(j)
	if err != nil {
		return err
	}
	lf, err := os.OpenFile(filepath.Join(g.jobDir(j), logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("study: %w", err)
	}
	defer lf.Close()
	if log == nil {
		log = lf
	} else {
		log = io.MultiWriter(lf, log)
	}
	fmt.Fprintf(log, "== %s: job %d (%s), fingerprint %s, %s\n", j.ID, j.N, j.Kind, j.Fingerprint, time.Now().UTC().Format(time.RFC3339))
	start := time.Now()
	if prev != "" && prev != j.Fingerprint {
		// An attempt under another plan: its partial outputs must not be
		// resumed.
		err = ex.clear(j)
	}
	if err == nil {
		err = ex.execute(ctx, j, log)
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%s: %w", interruptedPrefix, ctx.Err())
	}
	if rerr := g.end(j, rec, start, err); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// clear removes the outputs of an earlier attempt of a job that resumes
// from them (trainings and model builds; an evaluation's category
// records carry fingerprints of their own).
func (ex *executor) clear(j *Job) error {
	var p string
	switch {
	case j.Train != nil:
		p = filepath.Dir(ex.g.Path(j.Train.Out))
	case j.Model != nil:
		p = ex.g.Path(j.Model.Out)
	default:
		return nil
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	return nil
}

func (ex *executor) execute(ctx context.Context, j *Job, log io.Writer) error {
	switch j.Kind {
	case KindModel:
		return ex.model(ctx, j.Model, log)
	case KindTrain:
		return ex.train(ctx, j.Train, log)
	case KindEval, KindMerge:
		return ex.eval(ctx, j, log)
	case KindReport:
		return WriteReport(ctx, ex.g)
	}
	return fmt.Errorf("study: job %s: unknown kind %q", j.ID, j.Kind)
}

func (ex *executor) model(ctx context.Context, m *ModelJob, log io.Writer) error {
	out := ex.g.Path(m.Out)
	if m.Tiny != "" {
		v, err := clip.ParseVariant(m.Tiny)
		if err != nil {
			return err
		}
		_, err = clip.BuildTiny(ctx, out, m.Seed, clip.Options{Variant: v})
		fmt.Fprintf(log, "built the tiny %s model (seed %d) in %s\n", m.Tiny, m.Seed, out)
		return err
	}
	a, err := clip.Preset(m.Arch)
	if err != nil {
		return err
	}
	v, err := clip.ParseVariant(m.Variant)
	if err != nil {
		return err
	}
	weights := ex.g.Path(m.Weights)
	fmt.Fprintf(log, "reading %s\n", weights)
	w, err := clip.ReadWeights(weights)
	if err != nil {
		return err
	}
	sum, err := clip.FileSHA256(weights)
	if err != nil {
		return err
	}
	_, err = clip.Build(ctx, out, a, w, clip.Options{Variant: v, ImageSize: m.ImageSize}, clip.SourceInfo{File: filepath.Base(weights), SHA256: sum})
	if err == nil {
		fmt.Fprintf(log, "built the %s towers of %s in %s\n", m.Variant, a.Name, out)
	}
	return err
}

func (ex *executor) train(ctx context.Context, t *TrainJob, log io.Writer) error {
	rt, err := ex.runtime()
	if err != nil {
		return err
	}
	g := ex.g
	cfg := train.Config{Scheme: t.Scheme, Variant: t.Variant, Dataset: t.Loader.Dataset, Loader: loaderOptions(g, t.Loader),
		ModelDir: g.Path(t.Model), Recipe: train.Recipe{Epochs: t.Epochs, Batch: t.Batch, LR: t.LR, Seed: t.Seed, AugRate: t.AugRate},
		MaskRule: train.MaskRule(t.MaskRule)}
	job := train.Job{Config: cfg, Out: g.Path(t.Out), Init: g.Path(t.Init), Log: log}
	// A task that died resumes from its last epoch checkpoint.
	o := train.OutputsOf(job.Out)
	for n := t.Epochs - 1; n >= 1; n-- {
		if _, err := train.ReadState(o.Epoch(n)); err == nil {
			job.Resume, job.Init = o.Epoch(n), ""
			break
		}
	}
	_, err = train.RunJob(ctx, rt, job)
	return err
}

func (ex *executor) eval(ctx context.Context, j *Job, log io.Writer) error {
	g, e := ex.g, j.Eval
	out := g.Path(e.Out)
	if j.Kind == KindMerge {
		// Every category must come from its part: the merge only reads.
		for _, c := range e.Parts {
			p := filepath.Join(out, results.CategoriesDir, results.CategoryFile(c)+".json")
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("study: merging %s: the record of category %s is missing (%v); its part job must run first", j.ID, c, err)
			}
		}
	}
	rt, err := ex.runtime()
	if err != nil {
		return err
	}
	start := time.Now()
	m, err := bench.OpenModel(ctx, rt, g.Path(e.Model))
	if err != nil {
		return err
	}
	defer m.Close()
	spec, err := schemes.Lookup(e.Scheme)
	if err != nil {
		return err
	}
	s, err := spec.Build(m, schemes.Options{Variant: e.Variant, Prompts: g.Path(e.Prompts), Seed: e.Seed})
	if err != nil {
		return err
	}
	cache, err := featcache.Open(g.Path(CacheDir))
	if err != nil {
		return err
	}
	av, err := metrics.ParseAUPROVariant(e.AUPRO)
	if err != nil {
		return err
	}
	cfg := bench.Config{Dataset: e.Loader.Dataset, Loader: loaderOptions(g, e.Loader), Model: m, Scheme: s, Out: out,
		Cache: cache, AUPRO: av, Batch: e.Batch, Progress: log, PromptsFile: g.Path(e.Prompts)}
	cats, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if e.Loader.Category != "" {
		return nil // a part: its category's records; the merge writes results.json
	}
	_, err = bench.Finish(cfg, rt, cats, start)
	return err
}
