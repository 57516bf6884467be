package study

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Plan is a study as its plan file describes it (docs/cluster.md#study-plan).
// ParsePlan fills it and checks it completely, so that a bad plan fails
// before any job runs.
type Plan struct {
	File  string // the plan file as given
	Name  string // study: a short name (job names on a cluster)
	Title string // the title of RESULTS.md
	// Fixtures, when set, makes `study plan` write the synthetic fixtures
	// with this seed into the study folder when no --data is given.
	Fixtures *uint64
	// TinyModels, when set, builds every model as the tiny seeded model
	// of its variant (with this seed) instead of from its weights: the
	// protocol of a real study, run on the fixtures.
	TinyModels *uint64
	Datasets   map[string]DatasetOptions
	Models     []ModelSpec
	Methods    []MethodSpec
	Seeds      []uint64 // seeds of trained methods; nil: each recipe's seed
	Train      []TrainSpec
	Evaluate   []EvalSpec
	Reference  string // the method the others are tested against
	Tables     []TableSpec
	Settings   Settings

	keys map[string]Pos // where each top-level key was written
}

// at is where a top-level key was written (the plan's first line if it
// was not).
func (p *Plan) at(key string) Pos {
	if pos, ok := p.keys[key]; ok {
		return pos
	}
	return Pos{p.File, 1}
}

// Pos is where a plan entry was written: the file (a plan can extend
// another) and the line.
type Pos struct {
	File string
	Line int
}

// DatasetOptions are how one dataset is read: its folder under the data
// folder and the loader's options (SELECT in the CLI).
type DatasetOptions struct {
	Pos
	Folder     string // default: the dataset id
	Protocol   string
	Resolution string
	Views      []string
	Meta       string // relative to the dataset folder
	// Split "category" evaluates each category in a job of its own; the
	// category records are merged into one results.json afterwards.
	Split string
}

// ModelSpec is one model directory the study uses: built by the study
// (Tiny, or from Weights) or given (Dir).
type ModelSpec struct {
	Pos
	Name string
	// Tiny is the variant of a tiny seeded model (clip.BuildTiny).
	Tiny string
	Seed uint64
	// Dir is a model directory built beforehand, relative to the study
	// folder.
	Dir string
	// Weights (relative to the study folder), Arch and Variant build a
	// model from CLIP weights (as `models build` does).
	Weights, Arch, Variant string
	ImageSize              int
}

// MethodSpec is one method: a scheme on a model, expanded into one table
// row per variant.
type MethodSpec struct {
	Pos
	Name     string
	Scheme   string
	Model    string   // a models entry; default: the scheme's name
	Variants []string // nil: the scheme itself, row named Name
	Recipe   Recipe
	// Prompts is "untrained" (seeded initial tensors) or a learned-tensor
	// file relative to the study folder; "" trains the prompts of
	// trainable schemes.
	Prompts string
}

// Recipe overrides a scheme's training recipe; zero fields keep it.
type Recipe struct {
	Epochs   int     `json:"epochs,omitempty"`
	Batch    int     `json:"batch,omitempty"`
	LR       float64 `json:"lr,omitempty"`
	MaskRule string  `json:"mask_rule,omitempty"`
}

// TrainSpec is a set of training jobs: every trainable method in Methods
// (default: all) learns its prompts on Dataset, once per seed.
type TrainSpec struct {
	Pos
	Name    string
	Dataset string
	Methods []string
	// Init starts from the prompts another train entry learns (the same
	// method and seed): a fine-tune.
	Init string
}

// EvalSpec is a set of evaluations: every method in Methods (default:
// all) on every dataset, with the prompts the train entry Prompts learns
// (trainable methods) or the method's own (the others).
type EvalSpec struct {
	Pos
	Prompts  string // a train entry, or "untrained"
	Datasets []string
	Methods  []string
}

// TableSpec is one section of RESULTS.md.
type TableSpec struct {
	Pos
	Title    string
	Kind     string // TableDatasets, TableDefectTypes or TableSignificance
	Metrics  []string
	Methods  []string // rows; default: every row
	Datasets []string // columns; default: every evaluated dataset
}

// Table kinds.
const (
	TableDatasets     = "datasets"     // methods × datasets, mean ± std over seeds
	TableDefectTypes  = "defect-types" // seen and novel defect types per dataset
	TableSignificance = "significance" // each method against the reference
)

// Settings apply to every evaluation.
type Settings struct {
	AUPRO string `json:"aupro,omitempty"`
	Batch int    `json:"batch,omitempty"`
}

// Untrained is the Prompts value of seeded initial tensors.
const Untrained = "untrained"

// SplitCategory is the Split value that evaluates categories separately.
const SplitCategory = "category"

// PlanError is one problem of a plan, at a line of a file.
type PlanError struct {
	Pos
	Key string // where in the plan, e.g. methods[2].scheme
	Msg string
}

func (e *PlanError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
}

// PlanErrors are every problem found in a plan, in file and line order.
type PlanErrors []*PlanError

func (es PlanErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return "study: invalid plan:\n  " + strings.Join(lines, "\n  ")
}

// ErrPlan is matched by every PlanErrors.
var ErrPlan = errors.New("study: invalid plan")

// Is lets errors.Is(err, ErrPlan) find plan errors.
func (es PlanErrors) Is(target error) bool { return target == ErrPlan }

// ParsePlan reads and checks a plan file (and the plan it extends).
func ParsePlan(path string) (*Plan, error) {
	top, err := readTop(path, 0)
	if err != nil {
		return nil, err
	}
	d := &decoder{}
	p := &Plan{File: path}
	d.plan(p, top)
	if len(d.errs) == 0 {
		validate(p, d)
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i], d.errs[j]
			if a.File != b.File {
				return a.File < b.File
			}
			return a.Line < b.Line
		})
		return nil, d.errs
	}
	return p, nil
}

// topEntry is a top-level key of a plan with the file it came from.
type topEntry struct {
	file       string
	key, value *yaml.Node
}

// readTop reads the top-level mapping of a plan; keys of a plan it
// extends are kept where the plan itself does not set them.
func readTop(path string, depth int) ([]topEntry, error) {
	if depth > 8 {
		return nil, fmt.Errorf("study: %s: plans extend each other more than 8 levels deep (a cycle?)", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("study: %s: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, PlanErrors{{Pos: Pos{path, 1}, Msg: "empty plan"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, PlanErrors{{Pos: Pos{path, root.Line}, Msg: "a plan is a mapping of keys (study, models, methods, …)"}}
	}
	var own []topEntry
	var parent string
	var parentLine int
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if line, dup := seen[k.Value]; dup {
			return nil, PlanErrors{{Pos: Pos{path, k.Line}, Key: k.Value, Msg: fmt.Sprintf("given twice (first at line %d)", line)}}
		}
		seen[k.Value] = k.Line
		if k.Value == "extends" {
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return nil, PlanErrors{{Pos: Pos{path, v.Line}, Key: "extends", Msg: "want the path of another plan file"}}
			}
			parent, parentLine = v.Value, v.Line
			continue
		}
		own = append(own, topEntry{path, k, v})
	}
	if parent == "" {
		return own, nil
	}
	pp := parent
	if !filepath.IsAbs(pp) {
		pp = filepath.Join(filepath.Dir(path), pp)
	}
	inherited, err := readTop(pp, depth+1)
	if err != nil {
		var es PlanErrors
		if errors.As(err, &es) {
			return nil, es
		}
		return nil, PlanErrors{{Pos: Pos{path, parentLine}, Key: "extends", Msg: err.Error()}}
	}
	out := own
	for _, e := range inherited {
		if _, set := seen[e.key.Value]; !set {
			out = append(out, e)
		}
	}
	return out, nil
}

// decoder turns YAML nodes into a Plan, collecting every error with its
// line.
type decoder struct {
	errs PlanErrors
	file string // the file of the entry being decoded
}

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &PlanError{Pos: Pos{d.file, line}, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) failAt(p Pos, key, format string, args ...any) {
	d.errs = append(d.errs, &PlanError{Pos: p, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{d.file, n.Line} }

// fields decodes a mapping: each key must be one of fields; a key given
// twice or an unknown key is an error naming it.
func (d *decoder) fields(n *yaml.Node, key string, fields map[string]func(key string, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "want a mapping of %s", strings.Join(sortedKeys(fields), ", "))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := joinKey(key, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.fail(k, sub, "given twice (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			d.fail(k, sub, "unknown key; valid: %s", strings.Join(sortedKeys(fields), ", "))
			continue
		}
		f(sub, v)
	}
}

// entries decodes a mapping of named entries in their order.
func (d *decoder) entries(n *yaml.Node, key string, each func(name string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "want a mapping of named entries")
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if line, dup := seen[k.Value]; dup {
			d.fail(k, joinKey(key, k.Value), "given twice (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		if !validName(k.Value) {
			d.fail(k, joinKey(key, k.Value), "a name is letters, digits, '-', '_' and '.', starting with a letter or digit")
			continue
		}
		each(k.Value, k, v)
	}
}

// list decodes a sequence.
func (d *decoder) list(n *yaml.Node, key string, each func(key string, v *yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "want a list")
		return
	}
	for i, v := range n.Content {
		each(fmt.Sprintf("%s[%d]", key, i), v)
	}
}

func (d *decoder) str(n *yaml.Node, key string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.fail(n, key, "want a string")
		return ""
	}
	return n.Value
}

// strs accepts one string or a list of them.
func (d *decoder) strs(n *yaml.Node, key string) []string {
	if n.Kind == yaml.ScalarNode {
		return []string{d.str(n, key)}
	}
	var out []string
	d.list(n, key, func(k string, v *yaml.Node) { out = append(out, d.str(v, k)) })
	if out == nil {
		d.fail(n, key, "empty list")
	}
	return out
}

func (d *decoder) uint(n *yaml.Node, key string) uint64 {
	if n.Kind == yaml.ScalarNode {
		if v, err := strconv.ParseUint(n.Value, 10, 64); err == nil {
			return v
		}
	}
	d.fail(n, key, "want a whole number ≥ 0, got %q", n.Value)
	return 0
}

func (d *decoder) uints(n *yaml.Node, key string) []uint64 {
	if n.Kind == yaml.ScalarNode {
		return []uint64{d.uint(n, key)}
	}
	var out []uint64
	d.list(n, key, func(k string, v *yaml.Node) { out = append(out, d.uint(v, k)) })
	if out == nil {
		d.fail(n, key, "empty list")
	}
	return out
}

func (d *decoder) positive(n *yaml.Node, key string) int {
	if n.Kind == yaml.ScalarNode {
		if v, err := strconv.Atoi(n.Value); err == nil && v > 0 {
			return v
		}
	}
	d.fail(n, key, "want a whole number > 0, got %q", n.Value)
	return 0
}

func (d *decoder) plan(p *Plan, top []topEntry) {
	p.keys = map[string]Pos{}
	for _, e := range top {
		d.file = e.file
		k, v := e.key.Value, e.value
		p.keys[k] = Pos{e.file, e.key.Line}
		switch k {
		case "study":
			p.Name = d.str(v, k)
			if p.Name != "" && !validName(p.Name) {
				d.fail(v, k, "%q: a study name is letters, digits, '-', '_' and '.'", p.Name)
			}
		case "title":
			p.Title = d.str(v, k)
		case "data":
			d.fields(v, k, map[string]func(string, *yaml.Node){
				"fixtures": func(k string, v *yaml.Node) { s := d.uint(v, k); p.Fixtures = &s },
			})
		case "tiny_models":
			s := d.uint(v, k)
			p.TinyModels = &s
		case "datasets":
			p.Datasets = map[string]DatasetOptions{}
			d.entries(v, k, func(name string, kn, v *yaml.Node) {
				o := DatasetOptions{Pos: d.pos(kn)}
				d.fields(v, joinKey(k, name), map[string]func(string, *yaml.Node){
					"folder":     func(k string, v *yaml.Node) { o.Folder = d.str(v, k) },
					"protocol":   func(k string, v *yaml.Node) { o.Protocol = d.str(v, k) },
					"resolution": func(k string, v *yaml.Node) { o.Resolution = d.str(v, k) },
					"views":      func(k string, v *yaml.Node) { o.Views = d.strs(v, k) },
					"meta":       func(k string, v *yaml.Node) { o.Meta = d.str(v, k) },
					"split": func(k string, v *yaml.Node) {
						if o.Split = d.str(v, k); o.Split != SplitCategory {
							d.fail(v, k, "%q: want %q (one job per category)", o.Split, SplitCategory)
						}
					},
				})
				p.Datasets[name] = o
			})
		case "models":
			d.entries(v, k, func(name string, kn, v *yaml.Node) {
				m := ModelSpec{Pos: d.pos(kn), Name: name, Seed: 1}
				d.fields(v, joinKey(k, name), map[string]func(string, *yaml.Node){
					"tiny":       func(k string, v *yaml.Node) { m.Tiny = d.str(v, k) },
					"seed":       func(k string, v *yaml.Node) { m.Seed = d.uint(v, k) },
					"dir":        func(k string, v *yaml.Node) { m.Dir = d.path(v, k) },
					"weights":    func(k string, v *yaml.Node) { m.Weights = d.path(v, k) },
					"arch":       func(k string, v *yaml.Node) { m.Arch = d.str(v, k) },
					"variant":    func(k string, v *yaml.Node) { m.Variant = d.str(v, k) },
					"image_size": func(k string, v *yaml.Node) { m.ImageSize = d.positive(v, k) },
				})
				p.Models = append(p.Models, m)
			})
		case "methods":
			d.list(v, k, func(k string, v *yaml.Node) {
				m := MethodSpec{Pos: d.pos(v)}
				d.fields(v, k, map[string]func(string, *yaml.Node){
					"name":     func(k string, v *yaml.Node) { m.Name = d.str(v, k) },
					"scheme":   func(k string, v *yaml.Node) { m.Scheme = d.str(v, k) },
					"model":    func(k string, v *yaml.Node) { m.Model = d.str(v, k) },
					"variants": func(k string, v *yaml.Node) { m.Variants = d.strs(v, k) },
					"prompts": func(k string, v *yaml.Node) {
						if m.Prompts = d.str(v, k); m.Prompts != Untrained {
							m.Prompts = d.path(v, k)
						}
					},
					"recipe": func(k string, v *yaml.Node) {
						d.fields(v, k, map[string]func(string, *yaml.Node){
							"epochs":    func(k string, v *yaml.Node) { m.Recipe.Epochs = d.positive(v, k) },
							"batch":     func(k string, v *yaml.Node) { m.Recipe.Batch = d.positive(v, k) },
							"lr":        func(k string, v *yaml.Node) { m.Recipe.LR = d.positiveFloat(v, k) },
							"mask_rule": func(k string, v *yaml.Node) { m.Recipe.MaskRule = d.str(v, k) },
						})
					},
				})
				if m.Name == "" {
					d.fail(v, k+".name", "missing: every method has a name (its row in the tables)")
				}
				if m.Scheme == "" {
					d.fail(v, k+".scheme", "missing")
				}
				p.Methods = append(p.Methods, m)
			})
		case "seeds":
			p.Seeds = d.uints(v, k)
		case "train":
			d.entries(v, k, func(name string, kn, v *yaml.Node) {
				t := TrainSpec{Pos: d.pos(kn), Name: name}
				d.fields(v, joinKey(k, name), map[string]func(string, *yaml.Node){
					"dataset": func(k string, v *yaml.Node) { t.Dataset = d.str(v, k) },
					"methods": func(k string, v *yaml.Node) { t.Methods = d.strs(v, k) },
					"init":    func(k string, v *yaml.Node) { t.Init = d.str(v, k) },
				})
				if t.Dataset == "" {
					d.fail(kn, joinKey(k, name)+".dataset", "missing: the dataset whose test split the prompts learn from")
				}
				p.Train = append(p.Train, t)
			})
		case "evaluate":
			d.list(v, k, func(k string, v *yaml.Node) {
				e := EvalSpec{Pos: d.pos(v)}
				d.fields(v, k, map[string]func(string, *yaml.Node){
					"prompts":  func(k string, v *yaml.Node) { e.Prompts = d.str(v, k) },
					"datasets": func(k string, v *yaml.Node) { e.Datasets = d.strs(v, k) },
					"methods":  func(k string, v *yaml.Node) { e.Methods = d.strs(v, k) },
				})
				if e.Datasets == nil {
					d.fail(v, k+".datasets", "missing")
				}
				p.Evaluate = append(p.Evaluate, e)
			})
		case "reference":
			p.Reference = d.str(v, k)
		case "tables":
			d.list(v, k, func(k string, v *yaml.Node) {
				t := TableSpec{Pos: d.pos(v)}
				d.fields(v, k, map[string]func(string, *yaml.Node){
					"title":    func(k string, v *yaml.Node) { t.Title = d.str(v, k) },
					"kind":     func(k string, v *yaml.Node) { t.Kind = d.str(v, k) },
					"metrics":  func(k string, v *yaml.Node) { t.Metrics = d.strs(v, k) },
					"methods":  func(k string, v *yaml.Node) { t.Methods = d.strs(v, k) },
					"datasets": func(k string, v *yaml.Node) { t.Datasets = d.strs(v, k) },
				})
				p.Tables = append(p.Tables, t)
			})
		case "settings":
			d.fields(v, k, map[string]func(string, *yaml.Node){
				"aupro": func(k string, v *yaml.Node) { p.Settings.AUPRO = d.str(v, k) },
				"batch": func(k string, v *yaml.Node) { p.Settings.Batch = d.positive(v, k) },
			})
		default:
			d.fail(e.key, k, "unknown key; valid: %s", strings.Join(topKeys, ", "))
		}
	}
}

var topKeys = []string{"extends", "study", "title", "data", "tiny_models", "datasets", "models", "methods", "seeds", "train", "evaluate", "reference", "tables", "settings"}

func (d *decoder) positiveFloat(n *yaml.Node, key string) float64 {
	if n.Kind == yaml.ScalarNode {
		if v, err := strconv.ParseFloat(n.Value, 64); err == nil && v > 0 {
			return v
		}
	}
	d.fail(n, key, "want a number > 0, got %q", n.Value)
	return 0
}

// path decodes a path inside the study folder: relative, and not leaving
// it (docs/cluster.md#study-shared-folder).
func (d *decoder) path(n *yaml.Node, key string) string {
	s := d.str(n, key)
	if s == "" {
		return ""
	}
	if err := insideStudy(s); err != nil {
		d.fail(n, key, "%v", err)
		return ""
	}
	return filepath.ToSlash(filepath.Clean(s))
}

// insideStudy checks that a plan path stays inside the study folder.
func insideStudy(p string) error {
	if filepath.IsAbs(p) || strings.HasPrefix(p, "~") {
		return fmt.Errorf("%q is outside the study folder: paths in a plan are relative to it (link or copy inputs into it)", p)
	}
	c := filepath.Clean(p)
	if c == ".." || strings.HasPrefix(c, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%q leaves the study folder: paths in a plan are relative to it and stay inside", p)
	}
	return nil
}

func joinKey(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// validName is what a study, model or train entry may be called: it
// becomes part of job ids and folder names.
func validName(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
