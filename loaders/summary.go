package loaders

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
