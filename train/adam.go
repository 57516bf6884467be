package train

import (
	"fmt"
	"math"
)

// Adam's settings of both official trainers: torch.optim.Adam(lr=1e-3,
// betas=(0.5, 0.999)) with torch's default eps and no weight decay
// (DAPO and AnomalyCLIP train.py; docs/methods.md#train-adam).
const (
	DefaultLR = 1e-3
	Beta1     = 0.5
	Beta2     = 0.999
	AdamEps   = 1e-8
)

// AdaCLIP's optimiser: torch.optim.AdamW(lr=0.01, betas=(0.5, 0.999)) with
// AdamW's default weight decay 0.01 (method/trainer.py L87, train.py
// L156; docs/methods.md#adaclip-adamw).
const (
	AdaCLIPLR  = 0.01
	AdamWDecay = 0.01
)

// Adam is torch.optim.Adam without weight decay or amsgrad: per element
//
//	m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps)
//
// in the order torch's single-tensor implementation computes it, in
// float64 per element and stored in float32 like the parameters. With
// WeightDecay it is torch.optim.AdamW: p ← p·(1 − lr·wd) in float32 first,
// decoupled from the gradient.
type Adam struct {
	LR, Beta1, Beta2, Eps float64
	// WeightDecay is AdamW's decoupled decay; 0 for Adam.
	WeightDecay float64
	// Step counts the updates made (torch's state "step").
	Step int
	// M and V are the first and second moments, by tensor name.
	M, V map[string][]float32
}

// NewAdam returns the optimizer with the official settings and learning
// rate lr.
func NewAdam(lr float64) *Adam {
	return &Adam{LR: lr, Beta1: Beta1, Beta2: Beta2, Eps: AdamEps, M: map[string][]float32{}, V: map[string][]float32{}}
}

// Update applies one step to every parameter with its gradient. All
// tensors step together, as one optimizer over all parameter groups does.
func (a *Adam) Update(params, grads map[string][]float32) error {
	for name, p := range params {
		g, ok := grads[name]
		if !ok {
			return fmt.Errorf("train: adam: no gradient for %s", name)
		}
		if len(g) != len(p) {
			return fmt.Errorf("train: adam: %s has %d values, its gradient %d", name, len(p), len(g))
		}
		for i, v := range g {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("train: adam: gradient of %s[%d] is %v", name, i, v)
			}
		}
	}
	a.Step++
	t := float64(a.Step)
	bc1 := 1 - math.Pow(a.Beta1, t)
	bc2 := math.Sqrt(1 - math.Pow(a.Beta2, t))
	step := a.LR / bc1
	decay := float32(1 - a.LR*a.WeightDecay) // torch: param.mul_(1 - lr·wd)
	for name, p := range params {
		g := grads[name]
		m, v := a.M[name], a.V[name]
		if m == nil {
			m, v = make([]float32, len(p)), make([]float32, len(p))
			a.M[name], a.V[name] = m, v
		}
		if len(m) != len(p) || len(v) != len(p) {
			return fmt.Errorf("train: adam: state of %s has %d values, the tensor %d", name, len(m), len(p))
		}
		for i := range p {
			if a.WeightDecay != 0 {
				p[i] *= decay
			}
			gi := float64(g[i])
			mi := a.Beta1*float64(m[i]) + (1-a.Beta1)*gi
			vi := a.Beta2*float64(v[i]) + (1-a.Beta2)*gi*gi
			m[i], v[i] = float32(mi), float32(vi)
			p[i] = float32(float64(p[i]) - step*float64(m[i])/(math.Sqrt(float64(v[i]))/bc2+a.Eps))
		}
	}
	return nil
}
