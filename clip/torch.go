package clip

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
)

// readTorch reads a torch.save zip checkpoint (a state dict, or a dict of
// state dicts as DAPO and AnomalyCLIP save them).
func readTorch(path string) (map[string]Tensor, error) {
	obj, err := pytorch.LoadWithUnpickler(path, func(r io.Reader) pickle.Unpickler {
		u := pickle.NewUnpickler(r)
		u.FindClass = findClass
		return u
	})
	if err != nil {
		if strings.Contains(err.Error(), "TorchScript") {
			return nil, fmt.Errorf("clip: %s: a TorchScript archive (as OpenAI's JIT ViT-L-14-336px.pt), not a state dict: use Hugging Face openai/clip-vit-large-patch14-336 safetensors or torch.save(model.state_dict()): %w", path, err)
		}
		return nil, fmt.Errorf("clip: %s: torch checkpoint: %w", path, err)
	}
	out := map[string]Tensor{}
	if err := flatten("", obj, out, 0); err != nil {
		return nil, fmt.Errorf("clip: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("clip: %s: torch checkpoint holds no floating-point tensors", path)
	}
	return out, nil
}

// findClass resolves the classes gopickle does not know: a pickled
// nn.Parameter (torch._utils._rebuild_parameter) becomes its tensor; any
// other class becomes an inert object so that unrelated entries
// (argparse.Namespace, optimizer settings) do not stop the load.
func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return rebuildParameter{}, nil
	}
	return inertClass{}, nil
}

// inertClass stands for any class the loader has no use for; its objects
// accept construction, __setstate__ and attribute updates and hold nothing.
type inertClass struct{}

func (inertClass) Call(...any) (any, error)  { return inertObject{}, nil }
func (inertClass) PyNew(...any) (any, error) { return inertObject{}, nil }

type inertObject struct{}

func (inertObject) PySetState(any) error { return nil }

type rebuildParameter struct{}

// Call returns the data argument of _rebuild_parameter(data, requires_grad, backward_hooks).
func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("_rebuild_parameter: no arguments")
	}
	return args[0], nil
}

const maxDepth = 16

func flatten(prefix string, v any, out map[string]Tensor, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("checkpoint nested deeper than %d at %q", maxDepth, prefix)
	}
	join := func(k any) (string, bool) {
		var s string
		switch k := k.(type) {
		case string:
			s = k
		case int:
			s = strconv.Itoa(k)
		default:
			return "", false
		}
		if prefix == "" {
			return s, true
		}
		return prefix + "." + s, true
	}
	switch v := v.(type) {
	case *types.Dict:
		for _, e := range *v {
			if k, ok := join(e.Key); ok {
				if err := flatten(k, e.Value, out, depth+1); err != nil {
					return err
				}
			}
		}
	case *types.OrderedDict:
		for el := v.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*types.OrderedDictEntry)
			if k, ok := join(e.Key); ok {
				if err := flatten(k, e.Value, out, depth+1); err != nil {
					return err
				}
			}
		}
	case *pytorch.Tensor:
		t, ok, err := torchTensor(v)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", prefix, err)
		}
		if ok {
			out[prefix] = t
		}
	}
	return nil
}

// torchTensor copies a (possibly strided) torch tensor of a floating-point
// storage into a C-order Tensor; ok is false for integer tensors.
func torchTensor(t *pytorch.Tensor) (Tensor, bool, error) {
	var data []float32
	switch s := t.Source.(type) {
	case *pytorch.FloatStorage:
		data = s.Data
	case *pytorch.HalfStorage:
		data = s.Data
	case *pytorch.BFloat16Storage:
		data = s.Data
	case *pytorch.DoubleStorage:
		data = make([]float32, len(s.Data))
		for i, x := range s.Data {
			data[i] = float32(x)
		}
	default:
		return Tensor{}, false, nil
	}
	if len(t.Size) != len(t.Stride) {
		return Tensor{}, false, fmt.Errorf("size %v and stride %v differ in rank", t.Size, t.Stride)
	}
	shape := append([]int{}, t.Size...)
	out := NewTensor(shape...)
	if len(out.Data) == 0 {
		return out, true, nil
	}
	// Check the extreme offsets first so that a corrupt file cannot index
	// outside its storage.
	maxOff := t.StorageOffset
	for i, d := range shape {
		if d < 0 || t.Stride[i] < 0 {
			return Tensor{}, false, fmt.Errorf("negative size or stride (%v, %v)", t.Size, t.Stride)
		}
		maxOff += (d - 1) * t.Stride[i]
	}
	if t.StorageOffset < 0 || maxOff >= len(data) {
		return Tensor{}, false, fmt.Errorf("view (offset %d, size %v, stride %v) outside its storage of %d", t.StorageOffset, t.Size, t.Stride, len(data))
	}
	idx := make([]int, len(shape))
	for n := range out.Data {
		off := t.StorageOffset
		for i, j := range idx {
			off += j * t.Stride[i]
		}
		out.Data[n] = data[off]
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out, true, nil
}
