package loaders

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Counts are the normal and anomalous samples of one split.
type Counts struct {
	Normal    int `json:"normal"`
	Anomalous int `json:"anomalous"`
}

// CategorySummary counts one category's samples per split, and its test
// samples per defect type.
type CategorySummary struct {
	Train       Counts         `json:"train"`
	Test        Counts         `json:"test"`
	DefectTypes map[string]int `json:"defect_types"`
}

// Summary is what `dapobench datasets scan --json` prints.
type Summary struct {
	Dataset    string                      `json:"dataset"`
	Categories map[string]*CategorySummary `json:"categories"`
}

// UnknownDefect is the defect-type key for anomalous samples whose type the
// dataset does not record (VisA without image_anno.csv).
const UnknownDefect = "unknown"

// Summarize counts a set's samples.
func Summarize(s *Set) Summary {
	sum := Summary{Dataset: s.Dataset, Categories: map[string]*CategorySummary{}}
	for _, c := range s.Categories {
		sum.Categories[c] = &CategorySummary{DefectTypes: map[string]int{}}
	}
	for _, sm := range s.Samples {
		cs := sum.Categories[sm.Category]
		if cs == nil {
			cs = &CategorySummary{DefectTypes: map[string]int{}}
			sum.Categories[sm.Category] = cs
		}
		c := &cs.Train
		if sm.Split == Test {
			c = &cs.Test
		}
		if sm.Label == 1 {
			c.Anomalous++
			if sm.Split == Test {
				t := sm.DefectType
				if t == "" {
					t = UnknownDefect
				}
				cs.DefectTypes[t]++
			}
		} else {
			c.Normal++
		}
	}
	return sum
}

// WriteTable prints the summary of set as an aligned table: per category
// the normal and anomalous samples of each split and the test defect
// types, then the totals.
func (s *Summary) WriteTable(w io.Writer, set *Set) error {
	fmt.Fprintf(w, "%s: %s (%s, %s), %d samples\n\n", set.Dataset, set.Root, set.Layout, set.Protocol, len(set.Samples))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "category\ttrain normal\ttrain anomalous\ttest normal\ttest anomalous\tdefect types (test)\t")
	var tot CategorySummary
	for _, c := range set.Categories {
		cs := s.Categories[c]
		types := make([]string, 0, len(cs.DefectTypes))
		for t := range cs.DefectTypes {
			types = append(types, t)
		}
		slices.Sort(types)
		for i, t := range types {
			types[i] = fmt.Sprintf("%s %d", t, cs.DefectTypes[t])
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t\n", c, cs.Train.Normal, cs.Train.Anomalous, cs.Test.Normal, cs.Test.Anomalous, strings.Join(types, ", "))
		tot.Train.Normal += cs.Train.Normal
		tot.Train.Anomalous += cs.Train.Anomalous
		tot.Test.Normal += cs.Test.Normal
		tot.Test.Anomalous += cs.Test.Anomalous
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t\t\n", tot.Train.Normal, tot.Train.Anomalous, tot.Test.Normal, tot.Test.Anomalous)
	return tw.Flush()
}
