package metrics

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of them, so
// callers can tell bad input from a metric that simply has no value.
var (
	// ErrUndefined marks a metric that has no value for the given data,
	// e.g. AUROC with one class only or AUPRO without defect regions.
	ErrUndefined = errors.New("metric undefined")
	// ErrNonFinite marks a NaN or ±Inf score.
	ErrNonFinite = errors.New("score is not finite")
	// ErrShape marks scores, masks or labels whose sizes do not match.
	ErrShape = errors.New("shape mismatch")
	// ErrMaskValue marks a mask value other than 0, 1 or 255.
	ErrMaskValue = errors.New("mask value is not 0, 1 or 255")
	// ErrTooLarge marks a category with 2^32 or more pixels.
	ErrTooLarge = errors.New("too many pixels in one category")
)

// UndefinedError says which metric is undefined and why. It matches
// ErrUndefined with errors.Is.
type UndefinedError struct {
	Metric string
	Reason string
}

func (e *UndefinedError) Error() string {
	return fmt.Sprintf("metrics: %s undefined: %s", e.Metric, e.Reason)
}

// Is reports whether target is ErrUndefined.
func (e *UndefinedError) Is(target error) bool { return target == ErrUndefined }
