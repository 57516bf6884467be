package reports

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/dapobench/dapobench/results"
)

// Vocabulary notes: a scheme that knows which defect words its prompts were
// trained on marks each defect type "seen" or "novel" in
// Notes["vocabulary"] (docs/methods.md#dapo-novel-types).
const (
	VocabularyNote = "vocabulary"
	Seen           = "seen"
	Novel          = "novel"
)

// NormalGroup holds the normal class. Multi-type results give it a row, as
// DAPO's table does, and its scheme counts it as seen; but it is the
// background, not a defect type, and its near-perfect AP would dominate
// the mean of the seen types, so it gets a table of its own. It is
// recognised by name, "good" or "normal" in any case, the words the
// schemes use (dapo.Scheme.Seen).
const NormalGroup = "normal class"

// Mixed is the group of types that some runs have seen and others not.
const Mixed = "mixed"

// IsNormalClass reports whether a multi-type class is the normal class.
func IsNormalClass(ty string) bool {
	return strings.EqualFold(ty, "good") || strings.EqualFold(ty, "normal")
}

// typeGroup is one of the per-defect-type tables.
type typeGroup struct {
	key, title string
}

var typeGroups = []typeGroup{
	{NormalGroup, "Normal class"},
	{Seen, "Seen defect types"},
	{Novel, "Novel defect types"},
	{Mixed, "Defect types seen by some runs and novel to others"},
	{"", "Defect types"},
}

// defectTypeMetrics are the columns of a per-defect-type table.
var defectTypeMetrics = []struct{ key, short string }{
	{results.PixelAUROC, "AUROC"},
	{results.PixelAP, "AP"},
	{results.PixelF1, "F1"},
}

// DefectTypeGroup is one per-defect-type table: the normal class, the
// seen types, the novel ones, those the runs disagree on, or, for schemes
// that do not know their vocabulary, all types.
type DefectTypeGroup struct {
	Key   string // NormalGroup, Seen, Novel, Mixed or ""
	Title string
	Types []string // sorted
}

// GroupDefectTypes sorts the runs' defect types into the groups the tables
// show, in table order; groups without types are left out.
func GroupDefectTypes(cols []Column) []DefectTypeGroup {
	by := map[string][]string{}
	for _, ty := range defectTypeNames(cols) {
		g := vocabularyGroup(cols, ty)
		by[g] = append(by[g], ty)
	}
	var out []DefectTypeGroup
	for _, g := range typeGroups {
		if len(by[g.key]) > 0 {
			out = append(out, DefectTypeGroup{Key: g.key, Title: g.title, Types: by[g.key]})
		}
	}
	return out
}

// WriteDefectTypeTables writes the per-defect-type pixel metrics, split
// into the types each scheme's vocabulary has seen and the novel ones, with
// the mean of each group; the normal class comes first, on its own.
// Columns are metric × run; the best run of each metric is bold. Runs
// without defect types write nothing.
func WriteDefectTypeTables(w io.Writer, cols []Column, opt TableOptions) error {
	if err := checkColumns(cols); err != nil {
		return err
	}
	var b strings.Builder
	for _, g := range GroupDefectTypes(cols) {
		fmt.Fprintf(&b, "%s %s (pixel level, %%)\n\n", opt.heading(0), g.Title)
		if err := typeTable(&b, cols, g.Types, g.Key == Mixed, g.Key == NormalGroup); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// defectTypeNames is the sorted union of the runs' defect types.
func defectTypeNames(cols []Column) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range cols {
		for ty := range c.Results.DefectTypes {
			if !seen[ty] {
				seen[ty] = true
				out = append(out, ty)
			}
		}
	}
	sort.Strings(out)
	return out
}

// vocabularyGroup is "seen" or "novel" when every run that has the type
// agrees, "mixed" when they disagree, and "" when no run knows; the normal
// class is a group of its own.
func vocabularyGroup(cols []Column, ty string) string {
	if IsNormalClass(ty) {
		return NormalGroup
	}
	g := ""
	for _, c := range cols {
		e := c.Results.DefectTypes[ty]
		if e == nil {
			continue
		}
		v := e.Notes[VocabularyNote]
		switch {
		case v == "":
		case g == "":
			g = v
		case g != v:
			return Mixed
		}
	}
	return g
}

// typeTable writes one group: a row per type and, for several types, the
// group's mean.
func typeTable(b *strings.Builder, cols []Column, types []string, mixed, normal bool) error {
	var n notes
	header := []string{"defect type"}
	if normal {
		header[0] = "class"
	}
	for _, m := range defectTypeMetrics {
		for _, c := range cols {
			h := m.short
			if len(cols) > 1 {
				h += " · " + EscapeCell(c.Label)
			}
			header = append(header, h)
		}
	}
	var rows [][]string
	for _, ty := range types {
		row := []string{EscapeCell(ty)}
		for _, m := range defectTypeMetrics {
			cells := make([]cell, len(cols))
			for i, c := range cols {
				e := c.Results.DefectTypes[ty]
				cells[i] = entryCell(e, m.key, "defect type not in this run")
				if mixed && e != nil && e.Notes[VocabularyNote] != "" {
					cells[i].note = joinNotes(cells[i].note, e.Notes[VocabularyNote]+" in this run's vocabulary")
				}
			}
			row = append(row, formatRow(cells, &n)...)
		}
		rows = append(rows, row)
	}
	if len(types) > 1 {
		mean := []string{"*mean*"}
		for _, m := range defectTypeMetrics {
			cells := make([]cell, len(cols))
			for i, c := range cols {
				cells[i] = groupMean(c.Results, types, m.key)
			}
			mean = append(mean, formatRow(cells, &n)...)
		}
		rows = append(rows, mean)
	}
	if err := renderMarkdown(b, header, rows, 1); err != nil {
		return err
	}
	n.write(b)
	return nil
}

// groupMean is the unweighted mean of a metric over the group's types that
// have a value in r, with a note when some do not.
func groupMean(r *results.Results, types []string, metric string) cell {
	var sum float64
	var missing []string
	for _, ty := range types {
		if v, ok := r.DefectTypes[ty].Get(metric); ok {
			sum += v
		} else {
			missing = append(missing, ty)
		}
	}
	used := len(types) - len(missing)
	switch {
	case used == 0:
		return cell{note: "no type of this group has a value in this run"}
	case len(missing) > 0:
		return cell{v: sum / float64(used), ok: true,
			note: fmt.Sprintf("mean over %d of %d types; no value in this run for %s", used, len(types), strings.Join(missing, ", "))}
	}
	return cell{v: sum / float64(used), ok: true}
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
