package train

import (
	"fmt"

	"github.com/dapobench/dapobench/checkpoints"
)

// MaskRule is how a training step reads a ground-truth mask after it has
// been resized to the training size. Both official trainers resize the
// 0/255 mask with PIL bilinear and ToTensor (levels/255), so the edges of
// a defect get levels between 0 and 255; the trainers then disagree on
// which of those edge pixels are defect:
//
//   - MaskTruncate is DAPO's train.py. It casts the float mask to an
//     integer before it thresholds it, `gt = items['mask'].to(self.device).to(torch.long)`
//     (https://github.com/boschresearch/defect-aware-prompt-optimization/blob/ad2ceabc14079a177d9710a996a21f1a45c50938/train.py#L197),
//     and only then sets `gt > 0.5` to the pixel class (L206-L213). The
//     cast truncates every level below 255 to 0, so a pixel is defect
//     only where the resized mask is exactly 1.0: the defect loses its
//     edge, and small defects can vanish.
//   - MaskThreshold is AnomalyCLIP's train.py, which thresholds the float
//     tensor, `gt[gt > 0.5] = 1`
//     (https://github.com/zqhang/AnomalyCLIP/blob/45ed4dd35c05797d854294b5e8d585c545920089/train.py#L64-L66):
//     a level of 128 or more is defect. Every evaluation reads masks this
//     way too (bench/preprocess Spec.Mask), so this is the reading that
//     trains on the pixels the benchmark scores.
//
// When the images already have the training size, the mask is not
// resampled (PIL copies it), every level is 0 or 255 and the two rules
// agree. Each scheme trains with its own trainer's rule by default
// (DefaultMaskRule); the other is a named variant of the recipe
// (docs/methods.md#train-mask-reading).
type MaskRule string

// The mask readings.
const (
	MaskTruncate  MaskRule = "truncate"
	MaskThreshold MaskRule = "threshold"
)

// MaskRules lists the readings, for usage messages.
func MaskRules() []MaskRule { return []MaskRule{MaskTruncate, MaskThreshold} }

// DefaultMaskRule is the reading of a scheme's official trainer: DAPO
// truncates, AnomalyCLIP thresholds.
func DefaultMaskRule(scheme string) MaskRule {
	if scheme == checkpoints.DAPO {
		return MaskTruncate
	}
	return MaskThreshold
}

// ParseMaskRule checks a reading's name.
func ParseMaskRule(s string) (MaskRule, error) {
	switch r := MaskRule(s); r {
	case MaskTruncate, MaskThreshold:
		return r, nil
	}
	return "", fmt.Errorf("train: mask rule %q: want %s or %s", s, MaskTruncate, MaskThreshold)
}

// Defect reports whether a pixel whose resized mask level is v (0–255,
// Spec.MaskLevels) is a defect pixel under r.
func (r MaskRule) Defect(v uint8) bool {
	if r == MaskTruncate {
		return v == 255 // int(v/255) == 1
	}
	return v >= 128 // v/255 > 0.5
}
