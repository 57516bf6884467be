// Package gradcheck compares the gradients of grad.Backward with central
// finite differences, both computed in double by onnxruntime.
//
// The runner exchanges float32 and int64 tensors only, and float32
// rounding would swamp a finite difference, so this package runs the
// double models through onnxruntime_go directly, inside the environment
// that an open runner.Runtime holds: keep that Runtime open while Check
// runs.
package gradcheck

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	ort "github.com/yalue/onnxruntime_go"

	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Options tune a check. The zero value checks every element with the
// defaults below.
type Options struct {
	// Step is the central-difference step relative to max(1, |x|);
	// 0 means 1e-5, which in double balances truncation (∝ h²) against
	// rounding (∝ 1e-16/h) at about 1e-10.
	Step float64
	// MaxPerInput caps the elements checked per input; they are drawn
	// with Seed. 0 checks all.
	MaxPerInput int
	Seed        uint64
	// Floor is the smallest denominator of the element-wise relative
	// error, as a fraction of the largest gradient magnitude of the
	// input; 0 means 1e-6. Elements far below the tensor's scale are
	// judged on that scale, where their rounding noise belongs.
	Floor float64
}

// Result is the comparison for one input.
type Result struct {
	Input   string
	Checked int
	// MaxRelErr is max |a−n| / max(|a|, |n|, Floor·max|n|) over the
	// checked elements, a the backward graph's value, n the finite
	// difference.
	MaxRelErr float64
	// NormRelErr is ‖a−n‖₂ / ‖n‖₂ over the checked elements.
	NormRelErr float64
	// Worst is the flat index of the element with MaxRelErr, with its
	// two values.
	Worst             int
	Analytic, Numeric float64
}

func (r Result) String() string {
	return fmt.Sprintf("%s: %d elements, max rel err %.2e (element %d: backward %.9g, finite difference %.9g), norm rel err %.2e",
		r.Input, r.Checked, r.MaxRelErr, r.Worst, r.Analytic, r.Numeric, r.NormRelErr)
}

// Check differentiates fwd's output loss with respect to the inputs wrt
// with grad.Backward in float64 mode, and compares each checked element
// with (L(x+h) − L(x−h)) / 2h from the double forward model. feeds holds
// every graph input (float values are widened to double). rt must be open;
// it holds the onnxruntime environment.
func Check(ctx context.Context, rt *runner.Runtime, fwd *pb.ModelProto, loss string, wrt []string, feeds map[string]runner.Tensor, opts Options) ([]Result, error) {
	if rt == nil {
		return nil, fmt.Errorf("gradcheck: no runtime")
	}
	if !ort.IsInitialized() {
		return nil, fmt.Errorf("gradcheck: onnxruntime is not loaded; open a runner.Runtime first")
	}
	if opts.Step == 0 {
		opts.Step = 1e-5
	}
	if opts.Floor == 0 {
		opts.Floor = 1e-6
	}
	if opts.Step < 0 || opts.Floor < 0 || opts.MaxPerInput < 0 {
		return nil, fmt.Errorf("gradcheck: negative option in %+v", opts)
	}
	fwd, loss, err := scalarLoss(fwd, loss)
	if err != nil {
		return nil, err
	}
	bwd, err := grad.Backward(fwd, loss, wrt, grad.Options{Float64: true})
	if err != nil {
		return nil, fmt.Errorf("gradcheck: %w", err)
	}
	f64, err := grad.Float64(fwd, loss)
	if err != nil {
		return nil, fmt.Errorf("gradcheck: %w", err)
	}
	inputs, err := makeInputs(fwd, feeds)
	if err != nil {
		return nil, err
	}
	defer inputs.destroy()

	gradNames := make([]string, len(wrt))
	for i, x := range wrt {
		gradNames[i] = "grad_" + x
	}
	bout, err := run(bwd, inputs, append([]string{loss}, gradNames...))
	if err != nil {
		return nil, fmt.Errorf("gradcheck: backward model: %w", err)
	}
	fsess, err := newSession(f64, inputs.names, []string{loss})
	if err != nil {
		return nil, fmt.Errorf("gradcheck: forward model: %w", err)
	}
	defer fsess.Destroy()
	lossAt := func() (float64, error) {
		out := []ort.Value{nil}
		if err := fsess.Run(inputs.values, out); err != nil {
			return 0, err
		}
		defer out[0].Destroy()
		return out[0].(*ort.Tensor[float64]).GetData()[0], nil
	}

	rng := rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15))
	var results []Result
	for wi, x := range wrt {
		xs := inputs.doubles[x]
		analytic := bout[1+wi]
		if len(analytic) != len(xs) {
			return nil, fmt.Errorf("gradcheck: %s: gradient has %d elements, input %d", x, len(analytic), len(xs))
		}
		idx := make([]int, len(xs))
		for i := range idx {
			idx[i] = i
		}
		if opts.MaxPerInput > 0 && len(idx) > opts.MaxPerInput {
			rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			idx = idx[:opts.MaxPerInput]
			slices.Sort(idx)
		}
		numeric := make([]float64, len(idx))
		for k, i := range idx {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("gradcheck: %w", err)
			}
			x0 := xs[i]
			h := opts.Step * math.Max(1, math.Abs(x0))
			xs[i] = x0 + h
			hp := xs[i] - x0
			lp, err := lossAt()
			if err != nil {
				xs[i] = x0
				return nil, fmt.Errorf("gradcheck: forward model: %w", err)
			}
			xs[i] = x0 - h
			hm := x0 - xs[i]
			lm, err := lossAt()
			xs[i] = x0
			if err != nil {
				return nil, fmt.Errorf("gradcheck: forward model: %w", err)
			}
			numeric[k] = (lp - lm) / (hp + hm)
		}
		results = append(results, compare(x, idx, analytic, numeric, opts.Floor))
	}
	return results, nil
}

// Gradients runs grad.Backward's float64 model once and returns the loss
// and the gradient of each input in wrt, flattened, by input name.
func Gradients(rt *runner.Runtime, fwd *pb.ModelProto, loss string, wrt []string, feeds map[string]runner.Tensor) (float64, map[string][]float64, error) {
	if rt == nil || !ort.IsInitialized() {
		return 0, nil, fmt.Errorf("gradcheck: onnxruntime is not loaded; open a runner.Runtime first")
	}
	fwd, loss, err := scalarLoss(fwd, loss)
	if err != nil {
		return 0, nil, err
	}
	bwd, err := grad.Backward(fwd, loss, wrt, grad.Options{Float64: true})
	if err != nil {
		return 0, nil, fmt.Errorf("gradcheck: %w", err)
	}
	inputs, err := makeInputs(fwd, feeds)
	if err != nil {
		return 0, nil, err
	}
	defer inputs.destroy()
	names := []string{loss}
	for _, x := range wrt {
		names = append(names, "grad_"+x)
	}
	out, err := run(bwd, inputs, names)
	if err != nil {
		return 0, nil, fmt.Errorf("gradcheck: backward model: %w", err)
	}
	grads := map[string][]float64{}
	for i, x := range wrt {
		grads[x] = out[1+i]
	}
	return out[0][0], grads, nil
}

func compare(name string, idx []int, analytic, numeric []float64, floor float64) Result {
	r := Result{Input: name, Checked: len(idx), Worst: -1}
	scale := 0.0
	for _, n := range numeric {
		scale = math.Max(scale, math.Abs(n))
	}
	den := math.Max(floor*scale, math.SmallestNonzeroFloat64)
	var diff2, norm2 float64
	for k, i := range idx {
		a, n := analytic[i], numeric[k]
		d := math.Abs(a - n)
		rel := d / math.Max(math.Max(math.Abs(a), math.Abs(n)), den)
		if math.IsNaN(a) || math.IsNaN(n) {
			rel = math.Inf(1)
		}
		if r.Worst < 0 || rel > r.MaxRelErr {
			r.MaxRelErr, r.Worst, r.Analytic, r.Numeric = rel, i, a, n
		}
		diff2 += d * d
		norm2 += n * n
	}
	switch {
	case norm2 > 0:
		r.NormRelErr = math.Sqrt(diff2 / norm2)
	case diff2 > 0:
		r.NormRelErr = math.Inf(1)
	}
	return r
}

// scalarLoss gives a rank-0 loss the shape [1], which onnxruntime_go can
// return.
func scalarLoss(fwd *pb.ModelProto, loss string) (*pb.ModelProto, string, error) {
	for _, o := range fwd.GetGraph().GetOutput() {
		if o.GetName() != loss {
			continue
		}
		s := o.GetType().GetTensorType().GetShape()
		if s == nil || len(s.GetDim()) != 0 {
			return fwd, loss, nil
		}
		b, err := grad.Extend(fwd)
		if err != nil {
			return nil, "", fmt.Errorf("gradcheck: %w", err)
		}
		name := loss + "_1"
		b.Output(b.Reshape(loss, 1), name)
		m, err := b.Model()
		if err != nil {
			return nil, "", fmt.Errorf("gradcheck: %w", err)
		}
		return m, name, nil
	}
	return nil, "", fmt.Errorf("gradcheck: loss %q is not a graph output", loss)
}

// inputSet holds the double (or int64) input tensors shared by every run;
// the finite differences change the double data in place.
type inputSet struct {
	names   []string
	values  []ort.Value
	doubles map[string][]float64
}

func (s *inputSet) destroy() {
	for _, v := range s.values {
		v.Destroy()
	}
}

func makeInputs(fwd *pb.ModelProto, feeds map[string]runner.Tensor) (*inputSet, error) {
	s := &inputSet{doubles: map[string][]float64{}}
	inits := map[string]bool{}
	for _, t := range fwd.GetGraph().GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, in := range fwd.GetGraph().GetInput() {
		name := in.GetName()
		t, ok := feeds[name]
		if !ok {
			if inits[name] {
				continue // an input with a default value
			}
			s.destroy()
			return nil, fmt.Errorf("gradcheck: no feed for input %q", name)
		}
		shape := ort.NewShape(t.Shape...)
		var v ort.Value
		var err error
		switch elem := in.GetType().GetTensorType().GetElemType(); {
		case t.Float32 != nil && (elem == int32(pb.TensorProto_FLOAT) || elem == int32(pb.TensorProto_FLOAT16) || elem == int32(pb.TensorProto_DOUBLE)):
			d := make([]float64, len(t.Float32))
			for i, f := range t.Float32 {
				d[i] = float64(f)
			}
			var tt *ort.Tensor[float64]
			tt, err = ort.NewTensor(shape, d)
			if err == nil {
				s.doubles[name] = tt.GetData()
				v = tt
			}
		case t.Int64 != nil && elem == int32(pb.TensorProto_INT64):
			v, err = ort.NewTensor(shape, slices.Clone(t.Int64))
		default:
			err = fmt.Errorf("feed does not match the input's element type %d", elem)
		}
		if err != nil {
			s.destroy()
			return nil, fmt.Errorf("gradcheck: input %q: %w", name, err)
		}
		s.names = append(s.names, name)
		s.values = append(s.values, v)
	}
	for name := range feeds {
		if !slices.Contains(s.names, name) {
			s.destroy()
			return nil, fmt.Errorf("gradcheck: feed %q is not a graph input", name)
		}
	}
	return s, nil
}

func newSession(m *pb.ModelProto, in, out []string) (*ort.DynamicAdvancedSession, error) {
	data, err := graph.Marshal(m)
	if err != nil {
		return nil, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	// One thread: the models are tiny and the runs many.
	if err := so.SetIntraOpNumThreads(1); err != nil {
		return nil, err
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, err
	}
	// onnxruntime's extended fusions (FusedMatMul, QuickGelu) replace
	// double subgraphs with kernels that exist for float only; the basic
	// level (constant folding, dead nodes) is safe.
	if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableBasic); err != nil {
		return nil, err
	}
	return ort.NewDynamicAdvancedSessionWithONNXData(data, in, out, so)
}

// run evaluates m once and returns the named double outputs, flattened.
func run(m *pb.ModelProto, inputs *inputSet, outNames []string) ([][]float64, error) {
	sess, err := newSession(m, inputs.names, outNames)
	if err != nil {
		return nil, err
	}
	defer sess.Destroy()
	outs := make([]ort.Value, len(outNames))
	if err := sess.Run(inputs.values, outs); err != nil {
		return nil, err
	}
	res := make([][]float64, len(outs))
	for i, o := range outs {
		defer o.Destroy()
		t, ok := o.(*ort.Tensor[float64])
		if !ok {
			return nil, fmt.Errorf("output %q came back as %T, want double", outNames[i], o)
		}
		res[i] = slices.Clone(t.GetData())
	}
	return res, nil
}
