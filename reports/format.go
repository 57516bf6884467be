package reports

import (
	"fmt"
	"strconv"
	"strings"
)

// Missing is what a table prints for a metric without a value; a note
// under the table gives the reason.
const Missing = "–"

// Percent formats a fraction as a percentage with one decimal, the
// precision the papers print. Negative zero (which AU-PRO integration can
// produce) and values that round to it print as 0.0.
func Percent(v float64) string {
	s := strconv.FormatFloat(100*v, 'f', 1, 64)
	if s == "-0.0" {
		return "0.0"
	}
	return s
}

// EscapeCell makes s safe inside a Markdown table cell: tablewriter does
// not escape the column separator, so "cable|pipe" would split a row, and
// a line break would end it.
func EscapeCell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// notes numbers the distinct explanations a table refers to, in the order
// of first use, so that every "–" and every partial mean points at its
// reason.
type notes struct {
	texts []string
	index map[string]int
}

// mark returns the superscript reference to text, adding it if new.
func (n *notes) mark(text string) string {
	if n.index == nil {
		n.index = map[string]int{}
	}
	k, ok := n.index[text]
	if !ok {
		n.texts = append(n.texts, text)
		k = len(n.texts)
		n.index[text] = k
	}
	return fmt.Sprintf("<sup>%d</sup>", k)
}

// write prints the notes as a list under a table.
func (n *notes) write(b *strings.Builder) {
	for i, t := range n.texts {
		fmt.Fprintf(b, "- <sup>%d</sup> %s\n", i+1, EscapeCell(t))
	}
	if len(n.texts) > 0 {
		b.WriteString("\n")
	}
}

// cell is one value of a table row before it is formatted.
type cell struct {
	v    float64
	ok   bool
	note string // reason for a missing value, or how a value was obtained
}

// formatRow prints a row of values as percentages and bolds the best, the
// largest printed value; ties at the printed precision are all bold. A
// row with fewer than two values has no best.
func formatRow(cells []cell, n *notes) []string {
	out := make([]string, len(cells))
	best, count := -1.0, 0
	for _, c := range cells {
		if c.ok {
			count++
			if p := printed(c.v); p > best {
				best = p
			}
		}
	}
	for i, c := range cells {
		s := Missing
		if c.ok {
			s = Percent(c.v)
			if count > 1 && printed(c.v) == best {
				s = "**" + s + "**"
			}
		}
		if c.note != "" {
			s += n.mark(c.note)
		}
		out[i] = s
	}
	return out
}

// printed is the value as the table shows it, so that bold marks what a
// reader sees as the best.
func printed(v float64) float64 {
	p, _ := strconv.ParseFloat(Percent(v), 64)
	return p
}
