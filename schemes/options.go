package schemes

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// CheckVariant refuses a variant name the scheme does not list ("" is the
// scheme itself), with the valid names, as an ErrOption.
func (s Spec) CheckVariant(variant string) error {
	var names []string
	for _, v := range s.Variants() {
		if v.Name == variant || variant == "" {
			return nil
		}
		names = append(names, v.Name)
	}
	return fmt.Errorf("%w: unknown variant %q of %s; valid: %s", ErrOption, variant, s.Name, strings.Join(names, ", "))
}

// WriteVariants lists the scheme's variants, one a line with its doc,
// aligned.
func (s Spec) WriteVariants(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range s.Variants() {
		fmt.Fprintf(tw, "%s\t%s\n", v.Name, v.Doc)
	}
	return tw.Flush()
}

// ParseWords reads a comma-separated defect vocabulary; an empty word
// (",,,", "a,,b", a trailing comma) is an ErrOption, never a prompt with
// nothing in it.
func ParseWords(s string) ([]string, error) {
	var words []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w == "" {
			return nil, fmt.Errorf("%w: defect words %q: an empty word (want comma-separated words)", ErrOption, s)
		}
		words = append(words, w)
	}
	return words, nil
}
