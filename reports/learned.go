package reports

import (
	"strings"

	"github.com/dapobench/dapobench/results"
)

// LearnedSetting is the results setting in which every scheme with
// learned tensors (prompts, linear layers) says where they come from:
// "trained (FILE, sha256 …)" or "untrained (seed N)"
// (checkpoints.Learned.Label).
const LearnedSetting = "prompts"

// The marks of LearnedMark.
const (
	MarkTrained   = "trained"
	MarkUntrained = "untrained"
)

// LearnedMark says whether a run's learned tensors were trained
// (MarkTrained), seeded initial values (MarkUntrained), or whether the
// scheme has none ("": WinCLIP). Tables put it under each column's name,
// so that a trained and an untrained run are never read as comparable.
func LearnedMark(r *results.Results) string {
	if r == nil {
		return ""
	}
	v := r.Settings[LearnedSetting]
	switch {
	case strings.HasPrefix(v, MarkUntrained+" "), v == MarkUntrained:
		return MarkUntrained
	case strings.HasPrefix(v, MarkTrained+" "), v == MarkTrained:
		return MarkTrained
	}
	return ""
}

// MarkedLabel is a column label with the run's LearnedMark appended:
// "dapo (untrained)".
func MarkedLabel(label string, r *results.Results) string {
	if m := LearnedMark(r); m != "" {
		return label + " (" + m + ")"
	}
	return label
}
