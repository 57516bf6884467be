package winclip

import (
	"fmt"
	"strings"
)

// Template lists: which of the two published lists builds the prompts
// (docs/methods.md#winclip-templates).
const (
	// TemplatesAnomalib is anomalib's list (prompting.py TEMPLATES): 21
	// entries ending in a period, with "a jpeg corrupted photo of the {}."
	// twice and no "a cropped photo of a {}.". The harness follows it by
	// default, as anomalib is the reference implementation of WinCLIP
	// (docs/methods.md#winclip-templates).
	TemplatesAnomalib = "anomalib-21"
	// TemplatesOfficial is the 22-entry list of the authors' reproduction
	// (caoyunkang/WinClip WinCLIP/ad_prompts.py template_level_prompts):
	// every "the"/"a" pair, no trailing period.
	TemplatesOfficial = "winclip-22"
)

// NormalStates are the seven state phrases of a flawless object
// (anomalib NORMAL_STATES; docs/methods.md#winclip-states).
func NormalStates() []string {
	return []string{
		"{}",
		"flawless {}",
		"perfect {}",
		"unblemished {}",
		"{} without flaw",
		"{} without defect",
		"{} without damage",
	}
}

// AnomalousStates are the four state phrases of a damaged object
// (anomalib ANOMALOUS_STATES; docs/methods.md#winclip-states).
func AnomalousStates() []string {
	return []string{
		"damaged {}",
		"{} with flaw",
		"{} with defect",
		"{} with damage",
	}
}

// Templates returns the named template list (TemplatesAnomalib or
// TemplatesOfficial).
func Templates(name string) ([]string, error) {
	switch name {
	case TemplatesAnomalib:
		return []string{
			"a cropped photo of the {}.",
			"a close-up photo of a {}.",
			"a close-up photo of the {}.",
			"a bright photo of a {}.",
			"a bright photo of the {}.",
			"a dark photo of the {}.",
			"a dark photo of a {}.",
			"a jpeg corrupted photo of the {}.",
			"a jpeg corrupted photo of the {}.",
			"a blurry photo of the {}.",
			"a blurry photo of a {}.",
			"a photo of a {}.",
			"a photo of the {}.",
			"a photo of a small {}.",
			"a photo of the small {}.",
			"a photo of a large {}.",
			"a photo of the large {}.",
			"a photo of the {} for visual inspection.",
			"a photo of a {} for visual inspection.",
			"a photo of the {} for anomaly detection.",
			"a photo of a {} for anomaly detection.",
		}, nil
	case TemplatesOfficial:
		return []string{
			"a cropped photo of the {}",
			"a cropped photo of a {}",
			"a close-up photo of a {}",
			"a close-up photo of the {}",
			"a bright photo of a {}",
			"a bright photo of the {}",
			"a dark photo of the {}",
			"a dark photo of a {}",
			"a jpeg corrupted photo of a {}",
			"a jpeg corrupted photo of the {}",
			"a blurry photo of the {}",
			"a blurry photo of a {}",
			"a photo of a {}",
			"a photo of the {}",
			"a photo of a small {}",
			"a photo of the small {}",
			"a photo of a large {}",
			"a photo of the large {}",
			"a photo of the {} for visual inspection",
			"a photo of a {} for visual inspection",
			"a photo of the {} for anomaly detection",
			"a photo of a {} for anomaly detection",
		}, nil
	}
	return nil, fmt.Errorf("winclip: unknown template list %q (want %s or %s)", name, TemplatesAnomalib, TemplatesOfficial)
}

// fill substitutes s for the first "{}" of pattern, as Python's
// pattern.format(s) does for these patterns (one placeholder, no other
// braces); s is inserted literally.
func fill(pattern, s string) string { return strings.Replace(pattern, "{}", s, 1) }

// Prompts is the compositional prompt ensemble of an object
// (docs/methods.md#winclip-templates): every state phrase with the object word, put into every
// template, states outer and templates inner as anomalib's
// create_prompt_ensemble orders them. The order only affects the rounding
// of the mean embedding.
func Prompts(object string, templates []string) (normal, anomalous []string, err error) {
	if strings.TrimSpace(object) == "" {
		return nil, nil, fmt.Errorf("winclip: empty object word")
	}
	if len(templates) == 0 {
		return nil, nil, fmt.Errorf("winclip: no prompt templates")
	}
	build := func(states []string) []string {
		out := make([]string, 0, len(states)*len(templates))
		for _, st := range states {
			phrase := fill(st, object)
			for _, t := range templates {
				out = append(out, fill(t, phrase))
			}
		}
		return out
	}
	return build(NormalStates()), build(AnomalousStates()), nil
}
