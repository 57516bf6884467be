package runner

import (
	"errors"
	"fmt"
	"testing"

	"github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/runner/internal/testmodel"
)

func TestReadSignature(t *testing.T) {
	c := testmodel.NewClassifier(1, 4, 3, 5, 2)
	m := c.Model(map[string]string{"arch": "tiny"})
	// IR < 4 models list initializers among the graph inputs; those are not
	// inputs a caller must feed.
	m.Graph.Input = append(m.Graph.Input, testmodel.ValueInfo("W", onnxpb.TensorProto_FLOAT, int64(4), int64(3)))
	// A sparse initializer listed as input is dropped the same way.
	m.Graph.SparseInitializer = []*onnxpb.SparseTensorProto{{Values: &onnxpb.TensorProto{Name: "S"}, Dims: []int64{3}}}
	m.Graph.Input = append(m.Graph.Input, testmodel.ValueInfo("S", onnxpb.TensorProto_FLOAT, int64(3)))
	// An input of unknown rank.
	m.Graph.Input = append(m.Graph.Input, &onnxpb.ValueInfoProto{Name: "any", Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT)}}}})
	b, err := testmodel.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := readSignature(b)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%v %v %v nil-rank=%v", sig.inputs, sig.outputs, sig.metadata, sig.inputs[2].Shape == nil)
	want := "[x float32 [-1 4] idx int64 [-1] any float32 []] [probs float32 [-1 3] rows float32 [-1 2] label int64 [-1]] map[arch:tiny] nil-rank=true"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}},
		{"no graph", mustMarshal(t, &onnxpb.ModelProto{IrVersion: 8})},
		{"no outputs", mustMarshal(t, testmodel.Wrap(&onnxpb.GraphProto{Name: "g"}, nil))},
		{"truncated", b[:len(b)/2]},
	} {
		if _, err := readSignature(tc.b); !errors.Is(err, errNotONNX) {
			t.Errorf("%s: err = %v, want errNotONNX", tc.name, err)
		}
	}
}

func mustMarshal(t testing.TB, m *onnxpb.ModelProto) []byte {
	b, err := testmodel.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzReadSignature checks that no byte string makes the signature reader
// panic, and that whatever it accepts has outputs.
func FuzzReadSignature(f *testing.F) {
	for _, ext := range []bool{false, true} {
		m := testmodel.NewClassifier(1, 2, 2, 2, 2).Model(map[string]string{"k": "v"})
		if ext {
			m.Graph.Initializer[0].RawData = nil
			m.Graph.Initializer[0].DataLocation = onnxpb.TensorProto_EXTERNAL
		}
		f.Add(mustMarshal(f, m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sig, err := readSignature(b)
		if err == nil && len(sig.outputs) == 0 {
			t.Errorf("accepted a model without outputs")
		}
	})
}
