package resultsmd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"

	"github.com/dapobench/dapobench/reports"
	"github.com/dapobench/dapobench/reports/figures"
)

// planConfusion draws the defect-type confusion matrix of every category
// and run with multi-type results (categories/<category>.json).
func planConfusion(p *plan, runDirs []string, g *group, cats []string) error {
	type item struct {
		cat, label string
		j          *job
	}
	var items []item
	for i, r := range g.runs {
		files := names{}
		for _, c := range cats {
			if r.Results.Categories[c] == nil {
				continue
			}
			rec, err := r.Record(c)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			mt := rec.MultiType
			if mt == nil {
				continue
			}
			classes := make([]string, len(mt.Classes))
			for k, cl := range mt.Classes {
				classes[k] = cl.Class
			}
			title := fmt.Sprintf("%s, %s: defect-type confusion (%% of pixels)", c, g.labels[i])
			base := filepath.Join(runDirs[i], "confusion-"+files.unique(c))
			j := plotJob(base, figures.ConfusionSize, func() (*plot.Plot, error) {
				return figures.Confusion(title, classes, mt.Confusion)
			})
			j.draw = mkdirFirst(runDirs[i], j.draw)
			items = append(items, item{c, g.labels[i], p.add(j)})
		}
	}
	if len(items) == 0 {
		return nil
	}
	p.text("#### Defect-type confusion (pixel level)\n\n" +
		"Rows are the true class of each ground-truth pixel, columns the class of the highest score; " +
		"each row sums to 100 %%. A grey row is a class without pixels in this category.\n\n")
	for _, it := range items {
		it := it
		p.render = append(p.render, func(b *strings.Builder) {
			fmt.Fprintf(b, "**%s · %s**\n\n%s\n\n", reports.EscapeCell(it.cat), reports.EscapeCell(it.label), p.image(it.j, "confusion, "+it.cat+", "+it.label))
		})
	}
	return nil
}

// planOverlays draws, per category and run, the stored examples: the best-
// and worst-detected anomalies and the worst false alarm.
func planOverlays(p *plan, runDirs []string, g *group, cats []string) error {
	var sections []func(b *strings.Builder)
	files := make([]names, len(g.runs))
	for i := range files {
		files[i] = names{}
	}
	for _, c := range cats {
		for i, r := range g.runs {
			if r.Results.Categories[c] == nil {
				continue
			}
			exs, lo, hi, err := loadExamples(r, c)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if len(exs) == 0 {
				continue
			}
			name := files[i].unique(c)
			var jobs []*job
			for _, e := range exs {
				e := e
				path := filepath.Join(runDirs[i], name+"-"+e.Kind+".png")
				j := &job{base: strings.TrimSuffix(path, ".png")}
				j.draw = mkdirFirst(runDirs[i], func(j *job) error {
					note, err := drawExample(e, lo, hi, path)
					j.note = note
					return err
				})
				jobs = append(jobs, p.add(j))
			}
			label, cat := g.labels[i], c
			sections = append(sections, func(b *strings.Builder) {
				fmt.Fprintf(b, "**%s · %s** (colour range %.4g to %.4g)\n\n", reports.EscapeCell(cat), reports.EscapeCell(label), lo, hi)
				for k, j := range jobs {
					if k > 0 {
						b.WriteString(" ")
					}
					b.WriteString(p.image(j, kindText[exs[k].Kind]))
				}
				b.WriteString("\n\n")
				for k, j := range jobs {
					e := exs[k]
					fmt.Fprintf(b, "%d. %s: `%s`", k+1, kindText[e.Kind], e.RelImage)
					if e.DefectType != "" {
						fmt.Fprintf(b, " (%s)", e.DefectType)
					}
					fmt.Fprintf(b, ", score %.4g", e.Score)
					if j.note != "" {
						fmt.Fprintf(b, "; %s", j.note)
					}
					b.WriteString("\n")
				}
				b.WriteString("\n")
			})
		}
	}
	if len(sections) == 0 {
		return nil
	}
	p.text("#### Anomaly maps\n\n" +
		"Left: the test image, squashed to the evaluation size as the model saw it, with the ground-truth " +
		"contour in green. Right: the anomaly map over it, blue for the lowest and red for the highest " +
		"value of the colour range, which is shared by the pictures of one category and run.\n\n")
	p.render = append(p.render, sections...)
	return nil
}

// mkdirFirst creates a run's figure folder before drawing into it.
func mkdirFirst(dir string, draw func(j *job) error) func(j *job) error {
	return func(j *job) error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("resultsmd: %w", err)
		}
		return draw(j)
	}
}
