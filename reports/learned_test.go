package reports

import (
	"testing"

	"github.com/dapobench/dapobench/results"
)

func TestLearnedMark(t *testing.T) {
	for _, c := range []struct {
		prompts, want, label string
	}{
		{"untrained (seed 1)", MarkUntrained, "dapo (untrained)"},
		{"trained (epoch_15.pth, sha256 0123abcd…)", MarkTrained, "dapo (trained)"},
		{"", "", "dapo"},
		{"handcrafted", "", "dapo"},
		{"untrainedness", "", "dapo"},
	} {
		r := &results.Results{Settings: map[string]string{}}
		if c.prompts != "" {
			r.Settings[LearnedSetting] = c.prompts
		}
		if got := LearnedMark(r); got != c.want {
			t.Errorf("prompts %q: mark %q, want %q", c.prompts, got, c.want)
		}
		if got := MarkedLabel("dapo", r); got != c.label {
			t.Errorf("prompts %q: label %q, want %q", c.prompts, got, c.label)
		}
	}
	if LearnedMark(nil) != "" {
		t.Error("a nil result has a mark")
	}
}
