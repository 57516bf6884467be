package study

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/results"
	"github.com/dapobench/dapobench/schemes"
	"github.com/dapobench/dapobench/train"
)

// Row is one row of the study's tables: a method, or one variant of a
// method that lists several.
type Row struct {
	Label   string // the method's name, or the variant's
	Method  string
	Scheme  string
	Variant string // "" is the scheme itself
	Model   string
	Recipe  Recipe
	Prompts string // the method's fixed prompts: "untrained", a file, or ""
	// Trained rows learn their prompts in the study's train jobs.
	Trained bool
	Pos     Pos
}

// Rows expands the methods into table rows, in plan order.
func (p *Plan) Rows() []Row {
	var out []Row
	for _, m := range p.Methods {
		model := m.Model
		if model == "" {
			model = m.Scheme
		}
		_, err := train.Defaults(m.Scheme)
		trained := err == nil && m.Prompts == ""
		if len(m.Variants) == 0 {
			out = append(out, Row{m.Name, m.Name, m.Scheme, "", model, m.Recipe, m.Prompts, trained, m.Pos})
			continue
		}
		for _, v := range m.Variants {
			out = append(out, Row{v, m.Name, m.Scheme, v, model, m.Recipe, m.Prompts, trained, m.Pos})
		}
	}
	return out
}

// rowsOf returns the rows of the named methods (or rows); nil names all.
func (p *Plan) rowsOf(names []string) []Row {
	rows := p.Rows()
	if names == nil {
		return rows
	}
	var out []Row
	for _, r := range rows {
		if slices.Contains(names, r.Method) || slices.Contains(names, r.Label) {
			out = append(out, r)
		}
	}
	return out
}

// ReferenceRow is the row the significance tests compare against: the
// plan's reference, else the first row.
func (p *Plan) ReferenceRow() string {
	rows := p.Rows()
	if p.Reference != "" {
		for _, r := range rows {
			if r.Label == p.Reference {
				return r.Label
			}
		}
		for _, r := range rows {
			if r.Method == p.Reference {
				return r.Label
			}
		}
	}
	if len(rows) == 0 {
		return ""
	}
	return rows[0].Label
}

// DefaultTables are the tables of a plan that names none.
func DefaultTables() []TableSpec {
	return []TableSpec{
		{Title: "Zero-shot anomaly detection and segmentation", Kind: TableDatasets,
			Metrics: []string{results.ImageAUROC, results.ImageAP, results.PixelAUROC, results.PixelAUPRO}},
		{Title: "Seen and novel defect types", Kind: TableDefectTypes},
		{Title: "Significance", Kind: TableSignificance},
	}
}

// validate checks everything a plan refers to: schemes, variants,
// datasets, models, train entries and the prompts each evaluation needs,
// cycles among fine-tunes, table metrics.
func validate(p *Plan, d *decoder) {
	fail := d.failAt
	if p.Name == "" {
		base := filepath.Base(p.File)
		p.Name = strings.TrimSuffix(base, filepath.Ext(base))
		if !validName(p.Name) {
			p.Name = "study"
		}
	}
	if p.Title == "" {
		p.Title = p.Name
	}
	if p.Settings.AUPRO != "" {
		if _, err := metrics.ParseAUPROVariant(p.Settings.AUPRO); err != nil {
			fail(p.at("settings"), "settings.aupro", "%v", err)
		}
	}
	for name, o := range p.Datasets {
		if _, err := loaders.Lookup(name); err != nil {
			fail(o.Pos, "datasets."+name, "unknown dataset; valid: %s", strings.Join(datasetIDs(), ", "))
		}
	}

	// Models.
	models := map[string]*ModelSpec{}
	for i := range p.Models {
		m := &p.Models[i]
		models[m.Name] = m
		key := "models." + m.Name
		set := 0
		for _, s := range []string{m.Tiny, m.Dir, m.Weights} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			fail(m.Pos, key, "give exactly one of tiny (a seeded tiny model), weights (built by the study) and dir (built beforehand)")
			continue
		}
		if p.TinyModels != nil {
			v := m.Tiny
			if v == "" {
				v = m.Variant
			}
			if v == "" {
				fail(m.Pos, key, "tiny_models builds every model as the tiny model of its variant: give variant")
				continue
			}
			*m = ModelSpec{Pos: m.Pos, Name: m.Name, Tiny: v, Seed: *p.TinyModels}
		}
		switch {
		case m.Tiny != "":
			if _, err := clip.ParseVariant(m.Tiny); err != nil {
				fail(m.Pos, key+".tiny", "%v", err)
			}
		case m.Weights != "":
			if m.Arch == "" || m.Variant == "" {
				fail(m.Pos, key, "a model built from weights needs arch and variant")
			}
			if m.Arch != "" {
				if _, err := clip.Preset(m.Arch); err != nil {
					fail(m.Pos, key+".arch", "%v", err)
				}
			}
			if m.Variant != "" {
				if _, err := clip.ParseVariant(m.Variant); err != nil {
					fail(m.Pos, key+".variant", "%v", err)
				}
			}
		}
	}

	// Methods and their rows.
	methods := map[string]*MethodSpec{}
	for i := range p.Methods {
		m := &p.Methods[i]
		key := fmt.Sprintf("methods[%d]", i)
		if o, dup := methods[m.Name]; dup && m.Name != "" {
			fail(m.Pos, key+".name", "%q is also the name of the method at line %d", m.Name, o.Line)
		}
		methods[m.Name] = m
		spec, err := schemes.Lookup(m.Scheme)
		if err != nil {
			fail(m.Pos, key+".scheme", "unknown scheme %q; valid: %s", m.Scheme, strings.Join(schemes.Names(), ", "))
			continue
		}
		var known []string
		for _, v := range spec.Variants() {
			known = append(known, v.Name)
		}
		for _, v := range m.Variants {
			if !slices.Contains(known, v) {
				fail(m.Pos, key+".variants", "unknown variant %q of %s; valid: %s", v, m.Scheme, strings.Join(known, ", "))
			}
		}
		model := m.Model
		if model == "" {
			model = m.Scheme
		}
		if _, ok := models[model]; !ok {
			fail(m.Pos, key+".model", "no model %q in models (%s)", model, strings.Join(sortedKeys(models), ", "))
		}
		_, terr := train.Defaults(m.Scheme)
		if m.Recipe != (Recipe{}) && (terr != nil || m.Prompts != "") {
			fail(m.Pos, key+".recipe", "%s does not train here (%s)", m.Name, whyNotTrained(m, terr))
		}
		if m.Recipe.MaskRule != "" {
			if _, err := train.ParseMaskRule(m.Recipe.MaskRule); err != nil {
				fail(m.Pos, key+".recipe.mask_rule", "%v", err)
			}
		}
	}
	rows := map[string]Row{}
	for _, r := range p.Rows() {
		if o, dup := rows[r.Label]; dup {
			fail(r.Pos, "methods", "two rows are called %q (the methods at lines %d and %d); rename one", r.Label, o.Pos.Line, r.Pos.Line)
		}
		rows[r.Label] = r
	}
	if len(p.Methods) == 0 {
		fail(p.at("methods"), "methods", "missing: a study evaluates at least one method")
	}
	if seen := map[uint64]bool{}; p.Seeds != nil {
		for _, s := range p.Seeds {
			if seen[s] {
				fail(p.at("seeds"), "seeds", "seed %d is listed twice", s)
			}
			seen[s] = true
		}
	}
	if p.Reference != "" && rows[p.Reference].Label == "" && methods[p.Reference] == nil {
		fail(p.at("reference"), "reference", "no method or row %q", p.Reference)
	}

	// Train entries.
	trains := map[string]*TrainSpec{}
	for i := range p.Train {
		t := &p.Train[i]
		trains[t.Name] = t
	}
	for i := range p.Train {
		t := &p.Train[i]
		key := "train." + t.Name
		if _, err := loaders.Lookup(t.Dataset); err != nil {
			fail(t.Pos, key+".dataset", "unknown dataset %q; valid: %s", t.Dataset, strings.Join(datasetIDs(), ", "))
			continue
		}
		checkMethodNames(d, t.Pos, key+".methods", t.Methods, methods, rows)
		for _, r := range p.trainedRows(t) {
			if err := train.CheckDataset(r.Scheme, r.Variant, t.Dataset); err != nil {
				fail(t.Pos, key, "%s cannot learn its prompts on %s: %v", r.Label, t.Dataset, err)
			}
		}
		if t.Methods != nil {
			for _, n := range t.Methods {
				for _, r := range p.rowsOf([]string{n}) {
					if !r.Trained {
						m := methods[r.Method]
						_, terr := train.Defaults(r.Scheme)
						fail(t.Pos, key+".methods", "%s does not train here (%s)", n, whyNotTrained(m, terr))
						break
					}
				}
			}
		}
		if t.Init != "" {
			o, ok := trains[t.Init]
			if !ok {
				fail(t.Pos, key+".init", "no train entry %q", t.Init)
				continue
			}
			for _, r := range p.trainedRows(t) {
				if !slices.ContainsFunc(p.trainedRows(o), func(x Row) bool { return x.Label == r.Label }) {
					fail(t.Pos, key+".init", "train entry %q (line %d) does not train %s, which %s fine-tunes", t.Init, o.Line, r.Label, t.Name)
				}
			}
		}
	}
	// Cycles among fine-tunes.
	for i := range p.Train {
		t := &p.Train[i]
		seen := []string{t.Name}
		for cur := t; cur.Init != ""; {
			next, ok := trains[cur.Init]
			if !ok {
				break
			}
			if next.Name == t.Name {
				fail(t.Pos, "train."+t.Name+".init", "cycle: %s", strings.Join(append(seen, t.Name), " → "))
				break
			}
			if slices.Contains(seen, next.Name) {
				break // a cycle further on, reported at its own entries
			}
			seen = append(seen, next.Name)
			cur = next
		}
	}

	// Evaluations.
	type cellAt struct {
		line int
	}
	cells := map[[2]string]cellAt{}
	for i, e := range p.Evaluate {
		key := fmt.Sprintf("evaluate[%d]", i)
		for _, ds := range e.Datasets {
			if _, err := loaders.Lookup(ds); err != nil {
				fail(e.Pos, key+".datasets", "unknown dataset %q; valid: %s", ds, strings.Join(datasetIDs(), ", "))
			}
		}
		checkMethodNames(d, e.Pos, key+".methods", e.Methods, methods, rows)
		var t *TrainSpec
		if e.Prompts != "" && e.Prompts != Untrained {
			if t = trains[e.Prompts]; t == nil {
				var names []string
				for _, x := range p.Train {
					names = append(names, x.Name)
				}
				fail(e.Pos, key+".prompts", "no train entry %q trains prompts (train entries: %s; or %q)", e.Prompts, strings.Join(names, ", "), Untrained)
				continue
			}
		}
		for _, r := range p.rowsOf(e.Methods) {
			if r.Trained {
				switch {
				case e.Prompts == "":
					fail(e.Pos, key+".prompts", "%s learns its prompts: name the train entry whose prompts it uses, or %q", r.Label, Untrained)
					continue
				case t != nil && !slices.ContainsFunc(p.trainedRows(t), func(x Row) bool { return x.Label == r.Label }):
					fail(e.Pos, key+".prompts", "%s needs prompts that train entry %q (line %d) does not train", r.Label, t.Name, t.Line)
					continue
				}
			}
			for _, ds := range e.Datasets {
				c := [2]string{r.Label, ds}
				if o, dup := cells[c]; dup {
					fail(e.Pos, key, "%s is evaluated on %s twice (also by the entry at line %d); a table cell has one source", r.Label, ds, o.line)
					continue
				}
				cells[c] = cellAt{e.Line}
			}
		}
	}
	if len(p.Evaluate) == 0 {
		fail(p.at("evaluate"), "evaluate", "missing: a study evaluates on at least one dataset")
	}

	// Tables.
	if p.Tables == nil {
		p.Tables = DefaultTables()
	}
	for i := range p.Tables {
		t := &p.Tables[i]
		key := fmt.Sprintf("tables[%d]", i)
		switch t.Kind {
		case TableDatasets, TableDefectTypes, TableSignificance:
		default:
			fail(t.Pos, key+".kind", "%q; valid: %s, %s, %s", t.Kind, TableDatasets, TableDefectTypes, TableSignificance)
			continue
		}
		valid := tableMetrics[t.Kind]
		for _, m := range t.Metrics {
			if !slices.Contains(valid, m) {
				fail(t.Pos, key+".metrics", "%q cannot be in a %s table; valid: %s", m, t.Kind, strings.Join(valid, ", "))
			}
		}
		if t.Metrics == nil {
			t.Metrics = defaultTableMetrics[t.Kind]
		}
		if t.Title == "" {
			t.Title = defaultTitles[t.Kind]
		}
		checkMethodNames(d, t.Pos, key+".methods", t.Methods, methods, rows)
		for _, ds := range t.Datasets {
			if _, err := loaders.Lookup(ds); err != nil {
				fail(t.Pos, key+".datasets", "unknown dataset %q; valid: %s", ds, strings.Join(datasetIDs(), ", "))
			}
		}
	}
}

// trainedRows are the rows a train entry trains.
func (p *Plan) trainedRows(t *TrainSpec) []Row {
	var out []Row
	for _, r := range p.rowsOf(t.Methods) {
		if r.Trained {
			out = append(out, r)
		}
	}
	return out
}

func whyNotTrained(m *MethodSpec, terr error) string {
	if m != nil && m.Prompts != "" {
		return "its prompts are " + m.Prompts
	}
	if terr != nil {
		return "dapobench trains dapo and anomalyclip; this scheme has no training"
	}
	return "no training"
}

func checkMethodNames(d *decoder, pos Pos, key string, names []string, methods map[string]*MethodSpec, rows map[string]Row) {
	for _, n := range names {
		if methods[n] == nil && rows[n].Label == "" {
			d.failAt(pos, key, "no method or row %q (methods: %s)", n, strings.Join(sortedKeys(methods), ", "))
		}
	}
}

var tableMetrics = map[string][]string{
	TableDatasets: {results.ImageAUROC, results.ImageAP, results.ImageF1Max, results.PixelAUROC, results.PixelAP,
		results.PixelF1Max, results.PixelAUPRO, results.TypePixelAUROC, results.TypePixelAP, results.TypePixelF1, results.TypeAccuracy},
	TableDefectTypes:  {results.PixelAUROC, results.PixelAP, results.PixelF1},
	TableSignificance: {results.ImageAUROC, results.ImageAP, results.ImageF1Max},
}

var defaultTableMetrics = map[string][]string{
	TableDatasets:     {results.ImageAUROC, results.ImageAP, results.PixelAUROC, results.PixelAUPRO},
	TableDefectTypes:  {results.PixelAUROC, results.PixelF1},
	TableSignificance: {results.ImageAUROC, results.ImageAP},
}

var defaultTitles = map[string]string{
	TableDatasets:     "Anomaly detection and segmentation",
	TableDefectTypes:  "Seen and novel defect types",
	TableSignificance: "Significance against the reference",
}

func datasetIDs() []string {
	var ids []string
	for _, d := range loaders.Datasets() {
		ids = append(ids, d.ID)
	}
	return ids
}
