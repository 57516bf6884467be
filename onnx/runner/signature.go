package runner

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/dapobench/dapobench/internal/mapfile"
	"github.com/dapobench/dapobench/internal/onnxpb"
)

// DType is an ONNX tensor element type (the values of TensorProto.DataType).
type DType int32

// The element types the runner exchanges with a graph. A graph that computes
// in float16 casts at its boundary, so callers only ever see these two.
const (
	Float32 = DType(onnxpb.TensorProto_FLOAT)
	Int64   = DType(onnxpb.TensorProto_INT64)
)

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Int64:
		return "int64"
	}
	if n, ok := onnxpb.TensorProto_DataType_name[int32(d)]; ok {
		return n
	}
	return fmt.Sprintf("DType(%d)", int32(d))
}

// Info describes one graph input or output. Shape holds -1 for a symbolic
// dimension (such as the batch axis); a nil Shape means the rank is unknown.
type Info struct {
	Name  string
	DType DType
	Shape []int64
}

func (i Info) String() string { return fmt.Sprintf("%s %v %v", i.Name, i.DType, i.Shape) }

// signature is what the runner needs to know about a model before ORT sees it.
type signature struct {
	inputs, outputs []Info
	metadata        map[string]string
}

// ONNX field numbers used by readSignature (onnx.proto3).
const (
	modelGraph         = 7
	modelMetadataProps = 14

	graphInitializer       = 5
	graphInput             = 11
	graphOutput            = 12
	graphSparseInitializer = 15

	tensorName         = 8
	sparseTensorValues = 1
)

var errNotONNX = errors.New("not an ONNX model")

// mapModel maps a model file so that reading its signature touches only
// the pages it needs; an empty file is not a model.
func mapModel(path string) ([]byte, func(), error) {
	b, unmap, err := mapfile.Map(path, false)
	if errors.Is(err, mapfile.ErrEmpty) {
		return nil, nil, fmt.Errorf("%w: empty file", errNotONNX)
	}
	return b, unmap, err
}

// readSignature reads the graph's inputs, outputs and metadata from a
// serialised ModelProto without decoding the initializers: a ViT-L tower
// with embedded weights is over a gigabyte, and skipping a length-delimited
// field costs nothing. Graph inputs that are also initializers are dropped,
// as onnxruntime does, since callers need not feed them.
func readSignature(b []byte) (signature, error) {
	var sig signature
	var graph []byte
	haveGraph := false
	err := scanFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == modelGraph && typ == protowire.BytesType:
			graph, haveGraph = v, true
		case num == modelMetadataProps && typ == protowire.BytesType:
			var e onnxpb.StringStringEntryProto
			if err := proto.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("metadata_props: %w", err)
			}
			if sig.metadata == nil {
				sig.metadata = map[string]string{}
			}
			sig.metadata[e.Key] = e.Value
		}
		return nil
	})
	if err != nil {
		return sig, fmt.Errorf("%w: %w", errNotONNX, err)
	}
	if !haveGraph {
		return sig, fmt.Errorf("%w: no graph", errNotONNX)
	}
	var inputs []Info
	initializers := map[string]bool{}
	err = scanFields(graph, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case graphInitializer:
			name, err := tensorProtoName(v)
			if err != nil {
				return fmt.Errorf("initializer: %w", err)
			}
			initializers[name] = true
		case graphSparseInitializer:
			err := scanFields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num != sparseTensorValues || typ != protowire.BytesType {
					return nil
				}
				name, err := tensorProtoName(v)
				initializers[name] = true
				return err
			})
			if err != nil {
				return fmt.Errorf("sparse initializer: %w", err)
			}
		case graphInput, graphOutput:
			var vi onnxpb.ValueInfoProto
			if err := proto.Unmarshal(v, &vi); err != nil {
				return fmt.Errorf("graph input/output: %w", err)
			}
			info := valueInfo(&vi)
			if num == graphInput {
				inputs = append(inputs, info)
			} else {
				sig.outputs = append(sig.outputs, info)
			}
		}
		return nil
	})
	if err != nil {
		return sig, fmt.Errorf("%w: graph: %w", errNotONNX, err)
	}
	for _, in := range inputs {
		if !initializers[in.Name] {
			sig.inputs = append(sig.inputs, in)
		}
	}
	if len(sig.outputs) == 0 {
		return sig, fmt.Errorf("%w: graph has no outputs", errNotONNX)
	}
	return sig, nil
}

// scanFields calls f for each top-level field of a protobuf message; v holds
// the bytes of a length-delimited field and is nil otherwise.
func scanFields(b []byte, f func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}

func tensorProtoName(b []byte) (string, error) {
	var name string
	err := scanFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num == tensorName && typ == protowire.BytesType {
			name = string(v)
		}
		return nil
	})
	return name, err
}

// valueInfo converts a ValueInfoProto. A non-tensor type gets DType 0, which
// Load rejects with the value's name.
func valueInfo(vi *onnxpb.ValueInfoProto) Info {
	info := Info{Name: vi.GetName()}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return info
	}
	info.DType = DType(tt.GetElemType())
	if sh := tt.GetShape(); sh != nil {
		info.Shape = make([]int64, len(sh.GetDim()))
		for i, d := range sh.GetDim() {
			info.Shape[i] = -1
			if v, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok && v.DimValue > 0 {
				info.Shape[i] = v.DimValue
			}
		}
	}
	return info
}

// ReadInputs returns the inputs a model file declares, in graph order,
// without creating a session: what a caller needs to know to feed a graph
// it has not loaded yet.
func ReadInputs(path string) ([]Info, error) {
	data, unmap, err := mapModel(path)
	if err != nil {
		return nil, fmt.Errorf("runner: %s: %w", path, err)
	}
	defer unmap()
	sig, err := readSignature(data)
	if err != nil {
		return nil, fmt.Errorf("runner: %s: %w", path, err)
	}
	return sig.inputs, nil
}
