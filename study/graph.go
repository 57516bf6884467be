package study

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/atomicfile"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/train"
)

// Schema identifies the study.json format.
const Schema = "dapobench/study/v1"

// GraphFile is the job graph's file in a study folder.
const GraphFile = "study.json"

// Job kinds, in the order their stages run.
const (
	KindModel  = "model"  // build a model directory
	KindTrain  = "train"  // learn prompts
	KindEval   = "eval"   // evaluate on a whole dataset, or one category of it (a part)
	KindMerge  = "merge"  // assemble the results of an evaluation's parts
	KindReport = "report" // write RESULTS.md
)

var kindRank = map[string]int{KindModel: 0, KindTrain: 1, KindEval: 2, KindMerge: 3, KindReport: 4}

// Graph is a planned study: every job with its number, id, dependencies
// and fingerprint, and what the report needs (study.json).
type Graph struct {
	Schema string `json:"schema"`
	Name   string `json:"study"`
	Title  string `json:"title"`
	// Data is the folder holding the datasets, one sub-folder per
	// dataset: absolute, or relative to the study folder.
	Data      string      `json:"data"`
	Rows      []ReportRow `json:"rows"`
	Reference string      `json:"reference"`
	Tables    []TableSpec `json:"tables"`
	Stages    []Stage     `json:"stages"`
	Jobs      []*Job      `json:"jobs"`

	dir string // the study folder, set by ReadGraph and Plan
}

// ReportRow is a table row as the report needs it.
type ReportRow struct {
	Label  string   `json:"label"`
	Method string   `json:"method"`
	Scheme string   `json:"scheme"`
	Seeds  []uint64 `json:"seeds,omitempty"` // nil: one run, no seed
}

// Stage is a set of jobs that depend only on jobs of earlier stages: one
// job array on a cluster.
type Stage struct {
	Name string `json:"name"`
	Jobs []int  `json:"jobs"`
}

// Job is one unit of work, run by `study run DIR --job N|ID`.
type Job struct {
	N     int    `json:"n"`
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Stage int    `json:"stage"`
	Deps  []int  `json:"deps,omitempty"`
	// Fingerprint covers the job's settings and its dependencies'
	// fingerprints: a finished job whose recorded fingerprint matches is
	// not run again.
	Fingerprint string    `json:"fingerprint"`
	Model       *ModelJob `json:"model,omitempty"`
	Train       *TrainJob `json:"train,omitempty"`
	Eval        *EvalJob  `json:"eval,omitempty"`
}

// ModelJob builds a model directory.
type ModelJob struct {
	Name      string `json:"name"`
	Out       string `json:"out"`
	Tiny      string `json:"tiny,omitempty"`
	Seed      uint64 `json:"seed,omitempty"`
	Weights   string `json:"weights,omitempty"`
	Arch      string `json:"arch,omitempty"`
	Variant   string `json:"variant,omitempty"`
	ImageSize int    `json:"image_size,omitempty"`
}

// Loader is how a job reads its dataset; Root is Graph.Data joined with
// Folder.
type Loader struct {
	Dataset    string   `json:"dataset"`
	Folder     string   `json:"folder"`
	Protocol   string   `json:"protocol,omitempty"`
	Resolution string   `json:"resolution,omitempty"`
	Views      []string `json:"views,omitempty"`
	Meta       string   `json:"meta,omitempty"`
	Category   string   `json:"category,omitempty"`
}

// TrainJob learns one row's prompts on one dataset with one seed.
type TrainJob struct {
	Row      string  `json:"row"`
	Scheme   string  `json:"scheme"`
	Variant  string  `json:"variant,omitempty"`
	Loader   Loader  `json:"loader"`
	Model    string  `json:"model"` // model directory, relative to the study folder
	Epochs   int     `json:"epochs"`
	Batch    int     `json:"batch"`
	LR       float64 `json:"lr"`
	Seed     uint64  `json:"seed"`
	MaskRule string  `json:"mask_rule"`
	// AugRate is the mosaic rate of APRIL-GAN's and MultiADS' MVTec-AD
	// recipes (docs/methods.md#train-mosaic).
	AugRate float64 `json:"aug_rate,omitempty"`
	Init    string  `json:"init,omitempty"` // prompts of another train job
	Out     string  `json:"out"`            // FILE.safetensors
}

// EvalJob evaluates one row on one dataset (or one category of it, a
// part), or merges the parts of such an evaluation.
type EvalJob struct {
	Row       string `json:"row"`
	SeedIndex int    `json:"seed_index"` // position in the row's seeds; 0 without seeds
	Scheme    string `json:"scheme"`
	Variant   string `json:"variant,omitempty"`
	Model     string `json:"model"`
	Prompts   string `json:"prompts,omitempty"` // learned tensors; "" untrained or none
	Seed      uint64 `json:"seed"`              // of untrained tensors
	Loader    Loader `json:"loader"`
	Out       string `json:"out"` // the run directory
	AUPRO     string `json:"aupro"`
	Batch     int    `json:"batch,omitempty"`
	// Parts are the categories a merge assembles.
	Parts []string `json:"parts,omitempty"`
}

// Dir is the study folder.
func (g *Graph) Dir() string { return g.dir }

// Path resolves a path relative to the study folder.
func (g *Graph) Path(rel string) string {
	if rel == "" || filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(g.dir, filepath.FromSlash(rel))
}

// Root is the dataset folder a loader reads.
func (g *Graph) Root(l Loader) string {
	return filepath.Join(g.Path(g.Data), l.Folder)
}

// Job finds a job by number or id.
func (g *Graph) Job(ref string) (*Job, error) {
	for _, j := range g.Jobs {
		if j.ID == ref || fmt.Sprint(j.N) == ref {
			return j, nil
		}
	}
	return nil, fmt.Errorf("study: %s: no job %q (numbers 0–%d; ids in %s)", g.dir, ref, len(g.Jobs)-1, GraphFile)
}

// PlanOptions say where a study's data and folder are.
type PlanOptions struct {
	// Data is the folder holding the datasets, one sub-folder per dataset
	// id (as `fixtures gen` writes them); "" uses the fixtures the plan
	// asks for.
	Data string
	Out  string // the study folder
}

// MakeGraph expands a plan into its job graph and writes it to the study
// folder (study.json). With a fixtures plan and no data folder it writes
// the fixtures first. Datasets evaluated per category are read to list
// their categories, and every dataset folder must exist: a plan that
// cannot run fails here, before any job.
func MakeGraph(ctx context.Context, p *Plan, o PlanOptions) (*Graph, error) {
	if o.Out == "" {
		return nil, errors.New("study: no study folder given")
	}
	if old, err := ReadGraph(o.Out); err == nil && old.Name != p.Name {
		return nil, fmt.Errorf("study: %s holds study %q, not %q; choose another folder", o.Out, old.Name, p.Name)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	g := &Graph{Schema: Schema, Name: p.Name, Title: p.Title, Reference: p.ReferenceRow(), Tables: p.Tables, dir: o.Out}
	switch {
	case o.Data != "":
		abs, err := filepath.Abs(o.Data)
		if err != nil {
			return nil, fmt.Errorf("study: %w", err)
		}
		g.Data = abs
	case p.Fixtures != nil:
		g.Data = "data"
		if err := ensureFixtures(ctx, g.Path("data"), *p.Fixtures); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("study: %s reads datasets: give the folder holding them (--data DIR, one sub-folder per dataset id)", p.File)
	}
	// Every dataset folder the jobs read must be there now.
	var missing []string
	for _, ds := range p.datasetsUsed() {
		root := g.Root(Loader{Folder: (&builder{p: p}).loader(ds).Folder})
		if st, err := os.Stat(root); err != nil || !st.IsDir() {
			missing = append(missing, fmt.Sprintf("%s (%s)", ds, root))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("study: %s: dataset folders not found: %s; --data names the folder holding one sub-folder per dataset (or set datasets.ID.folder in the plan)",
			p.File, strings.Join(missing, ", "))
	}
	b := &builder{p: p, g: g, byID: map[string]*Job{}}
	if err := b.build(ctx); err != nil {
		return nil, err
	}
	if err := g.write(); err != nil {
		return nil, err
	}
	return g, nil
}

// ensureFixtures writes the synthetic fixtures unless the folder already
// holds those of the same seed.
func ensureFixtures(ctx context.Context, dir string, seed uint64) error {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err == nil {
		var m fixtures.Manifest
		if json.Unmarshal(b, &m) == nil && m.Seed == seed {
			return nil
		}
		return fmt.Errorf("study: %s holds other data than the fixtures of seed %d; remove it or give --data", dir, seed)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("study: %w", err)
	}
	_, err = fixtures.Generate(ctx, dir, seed)
	return err
}

// builder expands a plan.
type builder struct {
	p    *Plan
	g    *Graph
	jobs []*Job
	byID map[string]*Job
	deps map[*Job][]*Job
}

func slug(label string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(label) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

func (b *builder) add(j *Job, deps ...*Job) error {
	if o, dup := b.byID[j.ID]; dup {
		return fmt.Errorf("study: two jobs would be called %s (%s and %s); rename a method or train entry", j.ID, o.Kind, j.Kind)
	}
	b.byID[j.ID] = j
	b.jobs = append(b.jobs, j)
	if b.deps == nil {
		b.deps = map[*Job][]*Job{}
	}
	for _, d := range deps {
		if d != nil && !slices.Contains(b.deps[j], d) {
			b.deps[j] = append(b.deps[j], d)
		}
	}
	return nil
}

// seedsOf are the seeds a row runs with: the plan's, else the recipe's
// (trained rows) or 1 (untrained tensors).
func (b *builder) seedsOf(r Row) []uint64 {
	if b.p.Seeds != nil {
		return b.p.Seeds
	}
	if r.Trained {
		rec, _ := train.Defaults(r.Scheme)
		return []uint64{rec.Seed}
	}
	return []uint64{1}
}

func (b *builder) loader(ds string) Loader {
	o := b.p.Datasets[ds]
	l := Loader{Dataset: ds, Folder: o.Folder, Protocol: o.Protocol, Resolution: o.Resolution, Views: o.Views, Meta: o.Meta}
	if l.Folder == "" {
		l.Folder = ds
	}
	return l
}

func (b *builder) build(ctx context.Context) error {
	p, g := b.p, b.g
	// Models.
	models := map[string]*Job{}
	modelDir := map[string]string{}
	for _, m := range p.Models {
		if m.Dir != "" {
			modelDir[m.Name] = m.Dir
			continue
		}
		out := path.Join("models", m.Name)
		modelDir[m.Name] = out
		j := &Job{ID: "model/" + m.Name, Kind: KindModel, Model: &ModelJob{Name: m.Name, Out: out, Tiny: m.Tiny, Seed: m.Seed,
			Weights: m.Weights, Arch: m.Arch, Variant: m.Variant, ImageSize: m.ImageSize}}
		if m.Tiny == "" {
			j.Model.Seed = 0
		}
		if err := b.add(j); err != nil {
			return err
		}
		models[m.Name] = j
	}
	rows := p.Rows()
	slugs := map[string]string{}
	for _, r := range rows {
		s := slug(r.Label)
		if o, dup := slugs[s]; dup {
			return fmt.Errorf("study: %s: rows %q and %q would share job ids (%s); rename one", p.File, o, r.Label, s)
		}
		slugs[s] = r.Label
	}
	// Training, fine-tunes after what they start from.
	trained := map[[3]string]*Job{} // train entry, row, seed
	done := map[string]bool{}
	for len(done) < len(p.Train) {
		progress := false
		for i := range p.Train {
			t := &p.Train[i]
			if done[t.Name] || (t.Init != "" && !done[t.Init]) {
				continue
			}
			done[t.Name], progress = true, true
			for _, r := range p.trainedRows(t) {
				rec, err := train.DefaultsFor(r.Scheme, t.Dataset)
				if err != nil {
					return err
				}
				if r.Recipe.Epochs > 0 {
					rec.Epochs = r.Recipe.Epochs
				}
				if r.Recipe.Batch > 0 {
					rec.Batch = r.Recipe.Batch
				}
				if r.Recipe.LR > 0 {
					rec.LR = r.Recipe.LR
				}
				rule := string(train.DefaultMaskRule(r.Scheme))
				if r.Recipe.MaskRule != "" {
					rule = r.Recipe.MaskRule
				}
				for _, seed := range b.seedsOf(r) {
					id := fmt.Sprintf("train/%s/%s/s%d", t.Name, slug(r.Label), seed)
					j := &Job{ID: id, Kind: KindTrain, Train: &TrainJob{Row: r.Label, Scheme: r.Scheme, Variant: r.Variant,
						Loader: b.loader(t.Dataset), Model: modelDir[r.Model], Epochs: rec.Epochs, Batch: rec.Batch, LR: rec.LR,
						Seed: seed, MaskRule: rule, AugRate: rec.AugRate, Out: id + "/prompts.safetensors"}}
					var from *Job
					if t.Init != "" {
						from = trained[[3]string{t.Init, r.Label, fmt.Sprint(seed)}]
						j.Train.Init = from.Train.Out
					}
					if err := b.add(j, models[r.Model], from); err != nil {
						return err
					}
					trained[[3]string{t.Name, r.Label, fmt.Sprint(seed)}] = j
				}
			}
		}
		if !progress {
			return fmt.Errorf("study: %s: the train entries' init form a cycle", p.File)
		}
	}
	// Evaluations.
	aupro := p.Settings.AUPRO
	if aupro == "" {
		aupro = "cflow200"
	}
	type runKey struct {
		row string
		ds  string
	}
	var evals []*Job
	seedsOfRow := map[string][]uint64{}
	for _, e := range p.Evaluate {
		for _, r := range p.rowsOf(e.Methods) {
			for _, ds := range e.Datasets {
				base := EvalJob{Row: r.Label, Scheme: r.Scheme, Variant: r.Variant, Model: modelDir[r.Model], Loader: b.loader(ds),
					AUPRO: aupro, Batch: p.Settings.Batch, Seed: 1}
				type variantRun struct {
					ej   EvalJob
					id   string
					deps []*Job
				}
				var runs []variantRun
				switch {
				case r.Trained && e.Prompts != Untrained:
					seeds := b.seedsOf(r)
					seedsOfRow[r.Label] = seeds
					for i, seed := range seeds {
						tj := trained[[3]string{e.Prompts, r.Label, fmt.Sprint(seed)}]
						ej := base
						ej.SeedIndex, ej.Seed, ej.Prompts = i, seed, tj.Train.Out
						runs = append(runs, variantRun{ej, fmt.Sprintf("%s/%s/s%d", slug(r.Label), ds, seed), []*Job{tj}})
					}
				case r.Trained || r.Prompts == Untrained:
					seeds := b.seedsOf(Row{Scheme: r.Scheme})
					seedsOfRow[r.Label] = seeds
					for i, seed := range seeds {
						ej := base
						ej.SeedIndex, ej.Seed = i, seed
						runs = append(runs, variantRun{ej, fmt.Sprintf("%s/%s/s%d", slug(r.Label), ds, seed), nil})
					}
				default:
					ej := base
					ej.Prompts = r.Prompts
					runs = append(runs, variantRun{ej, fmt.Sprintf("%s/%s", slug(r.Label), ds), nil})
				}
				for _, v := range runs {
					ej := v.ej
					ej.Out = "runs/" + v.id
					deps := append([]*Job{models[r.Model]}, v.deps...)
					if b.p.Datasets[ds].Split != SplitCategory {
						j := &Job{ID: "eval/" + v.id, Kind: KindEval, Eval: &ej}
						if err := b.add(j, deps...); err != nil {
							return err
						}
						evals = append(evals, j)
						continue
					}
					cats, err := b.categories(ctx, ds)
					if err != nil {
						return err
					}
					var parts []*Job
					for _, c := range cats {
						pj := ej
						pj.Loader.Category = c
						j := &Job{ID: "part/" + v.id + "/" + c, Kind: KindEval, Eval: &pj}
						if err := b.add(j, deps...); err != nil {
							return err
						}
						parts = append(parts, j)
					}
					mj := ej
					mj.Parts = cats
					j := &Job{ID: "eval/" + v.id, Kind: KindMerge, Eval: &mj}
					if err := b.add(j, append(deps, parts...)...); err != nil {
						return err
					}
					evals = append(evals, j)
				}
			}
		}
	}
	for _, r := range rows {
		g.Rows = append(g.Rows, ReportRow{Label: r.Label, Method: r.Method, Scheme: r.Scheme, Seeds: seedsOfRow[r.Label]})
	}
	if err := b.add(&Job{ID: "report", Kind: KindReport}, evals...); err != nil {
		return err
	}
	b.number()
	return nil
}

// categories lists the categories of a dataset split into parts, by
// reading it.
func (b *builder) categories(ctx context.Context, ds string) ([]string, error) {
	l := b.loader(ds)
	set, err := loaders.Load(ctx, ds, loaderOptions(b.g, l))
	if err != nil {
		return nil, fmt.Errorf("study: listing the categories of %s: %w", ds, err)
	}
	var cats []string
	for _, s := range set.Samples {
		if s.Split == loaders.Test && !slices.Contains(cats, s.Category) {
			cats = append(cats, s.Category)
		}
	}
	if len(cats) == 0 {
		return nil, fmt.Errorf("study: %s: no test samples in %s", ds, b.g.Root(l))
	}
	return cats, nil
}

// loaderOptions are the loaders.Options of a job's dataset.
func loaderOptions(g *Graph, l Loader) loaders.Options {
	o := loaders.Options{Root: g.Root(l), Category: l.Category, Protocol: l.Protocol, Resolution: l.Resolution, Views: l.Views}
	if l.Meta != "" {
		o.Meta = filepath.Join(o.Root, filepath.FromSlash(l.Meta))
	}
	return o
}

// number orders the jobs into stages (by kind, fine-tunes after what
// they start from), numbers them, and computes their fingerprints.
func (b *builder) number() {
	depth := map[*Job]int{}
	var level func(j *Job) int
	level = func(j *Job) int {
		if d, ok := depth[j]; ok {
			return d
		}
		d := 0
		for _, x := range b.deps[j] {
			if x.Kind == j.Kind {
				d = max(d, level(x)+1)
			}
		}
		depth[j] = d
		return d
	}
	type key struct{ rank, depth int }
	keyOf := func(j *Job) key { return key{kindRank[j.Kind], level(j)} }
	var keys []key
	for _, j := range b.jobs {
		if k := keyOf(j); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, k int) bool {
		if keys[i].rank != keys[k].rank {
			return keys[i].rank < keys[k].rank
		}
		return keys[i].depth < keys[k].depth
	})
	stageOf := map[key]int{}
	names := []string{"models", "train", "evaluate", "merge", "report"}
	for i, k := range keys {
		stageOf[k] = i
		name := names[k.rank]
		if k.depth > 0 {
			name = fmt.Sprintf("%s-%d", name, k.depth+1)
		}
		b.g.Stages = append(b.g.Stages, Stage{Name: name})
	}
	sort.SliceStable(b.jobs, func(i, k int) bool { return stageOf[keyOf(b.jobs[i])] < stageOf[keyOf(b.jobs[k])] })
	for n, j := range b.jobs {
		j.N = n
		j.Stage = stageOf[keyOf(j)]
		b.g.Stages[j.Stage].Jobs = append(b.g.Stages[j.Stage].Jobs, n)
	}
	for _, j := range b.jobs {
		for _, d := range b.deps[j] {
			j.Deps = append(j.Deps, d.N)
		}
		sort.Ints(j.Deps)
	}
	b.g.Jobs = b.jobs
	// Fingerprints, in number order: dependencies come first.
	for _, j := range b.g.Jobs {
		h := sha256.New()
		spec, _ := json.Marshal(struct {
			ID    string    `json:"id"`
			Kind  string    `json:"kind"`
			Model *ModelJob `json:"model,omitempty"`
			Train *TrainJob `json:"train,omitempty"`
			Eval  *EvalJob  `json:"eval,omitempty"`
		}{j.ID, j.Kind, j.Model, j.Train, j.Eval})
		h.Write(spec)
		if j.Kind == KindReport {
			tables, _ := json.Marshal(struct {
				T string
				R []ReportRow
				F string
				X []TableSpec
			}{b.g.Title, b.g.Rows, b.g.Reference, b.g.Tables})
			h.Write(tables)
		}
		for _, d := range j.Deps {
			fmt.Fprintf(h, "\n%s", b.g.Jobs[d].Fingerprint)
		}
		j.Fingerprint = hex.EncodeToString(h.Sum(nil))[:24]
	}
}

// write writes study.json atomically.
func (g *Graph) write() error {
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return fmt.Errorf("study: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(g.dir, GraphFile), append(b, '\n')); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	return nil
}

// ReadGraph reads a study folder's job graph.
func ReadGraph(dir string) (*Graph, error) {
	p := filepath.Join(dir, GraphFile)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("study: %s has no %s: not a study folder (dapobench study plan writes one)", dir, GraphFile)
		}
		return nil, fmt.Errorf("study: %w", err)
	}
	var g Graph
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("study: %s: %w", p, err)
	}
	if g.Schema != Schema {
		return nil, fmt.Errorf("study: %s: schema %q, want %q", p, g.Schema, Schema)
	}
	for i, j := range g.Jobs {
		if j == nil || j.N != i {
			return nil, fmt.Errorf("study: %s: job %d is out of order", p, i)
		}
		for _, d := range j.Deps {
			if d < 0 || d >= i {
				return nil, fmt.Errorf("study: %s: job %s depends on job %d, which does not come before it", p, j.ID, d)
			}
		}
	}
	g.dir = dir
	return &g, nil
}

// datasetsUsed lists the datasets the plan trains or evaluates on.
func (p *Plan) datasetsUsed() []string {
	var out []string
	add := func(ds string) {
		if !slices.Contains(out, ds) {
			out = append(out, ds)
		}
	}
	for _, t := range p.Train {
		add(t.Dataset)
	}
	for _, e := range p.Evaluate {
		for _, ds := range e.Datasets {
			add(ds)
		}
	}
	return out
}
