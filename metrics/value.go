package metrics

import "math"

// Value is one metric: a number, or NaN together with the reason the metric
// is undefined for the data. Keeping the reason with the value lets reports
// write null with an explanation instead of a misleading 0 or 0.5.
type Value struct {
	V      float64 // the metric; NaN when undefined
	Reason string  // why the metric is undefined; "" when it is defined
}

func defined(v float64) Value { return Value{V: v} }

func undefined(reason string) Value { return Value{V: math.NaN(), Reason: reason} }

// OK reports whether the metric has a value.
func (v Value) OK() bool { return v.Reason == "" }

// Err returns nil for a defined value and an *UndefinedError naming metric
// otherwise.
func (v Value) Err(metric string) error {
	if v.OK() {
		return nil
	}
	return &UndefinedError{Metric: metric, Reason: v.Reason}
}

// Reasons for undefined metrics, shared so that reports read the same
// everywhere.
const (
	reasonNoPositives = "no positive samples (one class only)"
	reasonNoNegatives = "no negative samples (one class only)"
	reasonNoRegions   = "no defect regions in the ground truth"
	reasonNoNormalPix = "no defect-free pixels in the ground truth"
)
