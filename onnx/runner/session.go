package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Tensor is a dense row-major tensor exchanged with a graph. Exactly one of
// Float32 and Int64 holds the data. Inputs are passed to onnxruntime without
// copying, so the caller must not modify them during Run; outputs are fresh
// Go slices owned by the caller.
type Tensor struct {
	Shape   []int64
	Float32 []float32
	Int64   []int64
}

// DType reports which slice holds the data (0 when neither does).
func (t Tensor) DType() DType {
	switch {
	case t.Float32 != nil && t.Int64 == nil:
		return Float32
	case t.Int64 != nil && t.Float32 == nil:
		return Int64
	}
	return 0
}

// Session runs one graph. Run may be called from many goroutines at once:
// each call brings its own tensors, and onnxruntime documents concurrent Run
// on one session as safe.
type Session struct {
	rt       *Runtime
	name     string
	inputs   []Info
	outputs  []Info
	metadata map[string]string
	provider string

	mu     sync.RWMutex // Run holds it shared, Close exclusively
	s      *ort.DynamicAdvancedSession
	closed bool
}

// Name returns the model path (or the name given to LoadBytes).
func (s *Session) Name() string { return s.name }

// Inputs returns the inputs the caller must feed, in graph order.
func (s *Session) Inputs() []Info { return slices.Clone(s.inputs) }

// Outputs returns the graph outputs, in graph order.
func (s *Session) Outputs() []Info { return slices.Clone(s.outputs) }

// Metadata returns the model's metadata_props.
func (s *Session) Metadata() map[string]string { return maps.Clone(s.metadata) }

// Provider returns the execution provider the session runs on, ProviderCUDA
// or ProviderCPU, for recording in results. Under CUDA, nodes the provider
// cannot run still go to the CPU, as onnxruntime arranges.
func (s *Session) Provider() string { return s.provider }

// Run feeds every graph input by name and returns every output by name.
// Shapes may change from call to call wherever the graph has a symbolic
// dimension, such as the batch axis. Cancelling ctx asks onnxruntime to stop
// between nodes and Run returns ctx's error.
func (s *Session) Run(ctx context.Context, inputs map[string]Tensor) (map[string]Tensor, error) {
	return s.RunInto(ctx, inputs, nil)
}

// RunInto is Run with outputs the caller allocated (I/O binding of host
// memory): onnxruntime writes each output named in outputs straight into
// its slice, which must have the shape and size the graph produces, instead
// of into memory of its own that Run then copies. A caller that runs a
// graph many times with the same shapes reuses its buffers and saves the
// copy; outputs not named are allocated as in Run. The returned map holds
// every output, the bound ones sharing the caller's slices.
func (s *Session) RunInto(ctx context.Context, inputs, outputs map[string]Tensor) (map[string]Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("runner: run %s: %w", s.name, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("runner: run %s: session is closed", s.name)
	}
	vals := make([]ort.Value, len(s.inputs))
	defer func() {
		for _, v := range vals {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, in := range s.inputs {
		t, ok := inputs[in.Name]
		if !ok {
			return nil, fmt.Errorf("runner: run %s: missing input %q (want %v)", s.name, in.Name, s.inputs)
		}
		v, err := newValue("input", in, t)
		if err != nil {
			return nil, fmt.Errorf("runner: run %s: %w", s.name, err)
		}
		vals[i] = v
	}
	if len(inputs) != len(s.inputs) {
		var extra []string
		for name := range inputs {
			if !slices.ContainsFunc(s.inputs, func(i Info) bool { return i.Name == name }) {
				extra = append(extra, name)
			}
		}
		slices.Sort(extra)
		return nil, fmt.Errorf("runner: run %s: unknown inputs %s (want %v)", s.name, strings.Join(extra, ", "), s.inputs)
	}

	outs := make([]ort.Value, len(s.outputs)) // nil: onnxruntime allocates, the wrapper copies to Go memory
	defer func() {
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	bound := 0
	for i, o := range s.outputs {
		t, ok := outputs[o.Name]
		if !ok {
			continue
		}
		v, err := newValue("output", o, t)
		if err != nil {
			return nil, fmt.Errorf("runner: run %s: %w", s.name, err)
		}
		outs[i] = v
		bound++
	}
	if bound != len(outputs) {
		var extra []string
		for name := range outputs {
			if !slices.ContainsFunc(s.outputs, func(i Info) bool { return i.Name == name }) {
				extra = append(extra, name)
			}
		}
		slices.Sort(extra)
		return nil, fmt.Errorf("runner: run %s: unknown outputs %s (want %v)", s.name, strings.Join(extra, ", "), s.outputs)
	}
	if err := s.run(ctx, vals, outs); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("runner: run %s: %w", s.name, ctxErr)
		}
		return nil, fmt.Errorf("runner: run %s on %s: %w", s.name, s.provider, err)
	}
	result := make(map[string]Tensor, len(outs))
	for i, v := range outs {
		if t, ok := outputs[s.outputs[i].Name]; ok {
			result[s.outputs[i].Name] = t
			continue
		}
		var t Tensor
		switch v := v.(type) {
		case *ort.Tensor[float32]:
			t = Tensor{Shape: slices.Clone([]int64(v.GetShape())), Float32: v.GetData()}
		case *ort.Tensor[int64]:
			t = Tensor{Shape: slices.Clone([]int64(v.GetShape())), Int64: v.GetData()}
		default:
			return nil, fmt.Errorf("runner: run %s: output %q came back as %T, want float32 or int64", s.name, s.outputs[i].Name, v)
		}
		result[s.outputs[i].Name] = t
	}
	return result, nil
}

// run calls onnxruntime, with a terminate flag wired to ctx when ctx can be
// cancelled.
func (s *Session) run(ctx context.Context, in, out []ort.Value) error {
	if ctx.Done() == nil {
		return s.s.Run(in, out)
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return fmt.Errorf("run options: %w", err)
	}
	var mu sync.Mutex // keeps Terminate from racing with Destroy
	finished := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			ro.Terminate()
		}
	})
	err = s.s.RunWithOptions(in, out, ro)
	stop()
	mu.Lock()
	finished = true
	mu.Unlock()
	ro.Destroy()
	return err
}

// Close releases the session, waiting for runs in progress. Closing twice is
// harmless.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.rt.forget(s)
	if err := s.s.Destroy(); err != nil {
		return fmt.Errorf("runner: close %s: %w", s.name, err)
	}
	return nil
}

// newValue checks a tensor against the graph's declared input and wraps it
// for onnxruntime without copying.
func newValue(role string, in Info, t Tensor) (ort.Value, error) {
	if t.DType() != in.DType {
		got := "no data"
		if t.DType() != 0 {
			got = t.DType().String()
		} else if t.Float32 != nil && t.Int64 != nil {
			got = "both Float32 and Int64 set"
		}
		return nil, fmt.Errorf("%s %q: want %v, got %s", role, in.Name, in.DType, got)
	}
	n := int64(1)
	for _, d := range t.Shape {
		if d <= 0 {
			return nil, fmt.Errorf("%s %q: shape %v: every dimension must be positive", role, in.Name, t.Shape)
		}
		n *= d
	}
	if in.Shape != nil {
		ok := len(t.Shape) == len(in.Shape)
		for i := 0; ok && i < len(in.Shape); i++ {
			ok = in.Shape[i] < 0 || in.Shape[i] == t.Shape[i]
		}
		if !ok {
			return nil, fmt.Errorf("%s %q: shape %v does not fit the graph's %v", role, in.Name, t.Shape, in.Shape)
		}
	}
	shape := ort.NewShape(t.Shape...)
	var v ort.Value
	var err error
	switch in.DType {
	case Float32:
		if int64(len(t.Float32)) != n {
			return nil, fmt.Errorf("%s %q: shape %v needs %d values, got %d", role, in.Name, t.Shape, n, len(t.Float32))
		}
		v, err = ort.NewTensor(shape, t.Float32)
	case Int64:
		if int64(len(t.Int64)) != n {
			return nil, fmt.Errorf("%s %q: shape %v needs %d values, got %d", role, in.Name, t.Shape, n, len(t.Int64))
		}
		v, err = ort.NewTensor(shape, t.Int64)
	default:
		err = errors.New("unsupported type")
	}
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", role, in.Name, err)
	}
	return v, nil
}
