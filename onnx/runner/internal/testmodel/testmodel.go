// Package testmodel writes small ONNX graphs with known weights, so the
// runner's tests exercise the real onnxruntime on models whose outputs can be
// recomputed in plain Go.
package testmodel

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/dapobench/dapobench/internal/onnxpb"
)

// Opset is the ONNX operator set the models declare.
const Opset = 17

// Classifier is a three-headed model: probs = Softmax(x·W + B) over the
// last axis, rows = Gather(T, idx) along axis 0, and label = ArgMax(x·W + B).
// Its batch axis is symbolic, so one session serves every batch size.
//
// Inputs: "x" float32 [batch, K], "idx" int64 [batch].
// Outputs: "probs" float32 [batch, M], "rows" float32 [batch, D],
// "label" int64 [batch].
type Classifier struct {
	K, M, V, D int
	W          []float32 // [K, M], row-major
	B          []float32 // [M]
	T          []float32 // [V, D]
}

// NewClassifier draws weights from a seeded generator.
func NewClassifier(seed uint64, k, m, v, d int) *Classifier {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	return &Classifier{K: k, M: m, V: v, D: d, W: fill(k * m), B: fill(m), T: fill(v * d)}
}

// Forward computes the outputs in float64 (probs and rows rounded to
// float32), as the reference the ONNX graph is checked against.
func (c *Classifier) Forward(x []float32, idx []int64) (probs, rows []float32, label []int64) {
	n := len(idx)
	probs = make([]float32, n*c.M)
	label = make([]int64, n)
	logits := make([]float64, c.M)
	for i := 0; i < n; i++ {
		mx := math.Inf(-1)
		for j := 0; j < c.M; j++ {
			s := float64(c.B[j])
			for k := 0; k < c.K; k++ {
				s += float64(x[i*c.K+k]) * float64(c.W[k*c.M+j])
			}
			logits[j] = s
			if s > mx {
				mx, label[i] = s, int64(j)
			}
		}
		var sum float64
		for j := range logits {
			logits[j] = math.Exp(logits[j] - mx)
			sum += logits[j]
		}
		for j := range logits {
			probs[i*c.M+j] = float32(logits[j] / sum)
		}
	}
	rows = make([]float32, n*c.D)
	for i, v := range idx {
		copy(rows[i*c.D:(i+1)*c.D], c.T[int(v)*c.D:(int(v)+1)*c.D])
	}
	return probs, rows, label
}

// Model returns the ONNX model. Metadata entries become metadata_props.
func (c *Classifier) Model(metadata map[string]string) *onnxpb.ModelProto {
	g := &onnxpb.GraphProto{
		Name: "classifier",
		Node: []*onnxpb.NodeProto{
			node("MatMul", []string{"x", "W"}, []string{"xw"}),
			node("Add", []string{"xw", "B"}, []string{"logits"}),
			node("Softmax", []string{"logits"}, []string{"probs"}, intAttr("axis", -1)),
			node("Gather", []string{"T", "idx"}, []string{"rows"}, intAttr("axis", 0)),
			node("ArgMax", []string{"logits"}, []string{"label"}, intAttr("axis", 1), intAttr("keepdims", 0)),
		},
		Initializer: []*onnxpb.TensorProto{
			Float32Initializer("W", c.W, int64(c.K), int64(c.M)),
			Float32Initializer("B", c.B, int64(c.M)),
			Float32Initializer("T", c.T, int64(c.V), int64(c.D)),
		},
		Input: []*onnxpb.ValueInfoProto{
			ValueInfo("x", onnxpb.TensorProto_FLOAT, "batch", int64(c.K)),
			ValueInfo("idx", onnxpb.TensorProto_INT64, "batch"),
		},
		Output: []*onnxpb.ValueInfoProto{
			ValueInfo("probs", onnxpb.TensorProto_FLOAT, "batch", int64(c.M)),
			ValueInfo("rows", onnxpb.TensorProto_FLOAT, "batch", int64(c.D)),
			ValueInfo("label", onnxpb.TensorProto_INT64, "batch"),
		},
	}
	return Wrap(g, metadata)
}

// Slow is a chain of n square MatMuls on input "x" float32 [batch, width]
// with output "y": enough work that a run can be cancelled half way.
func Slow(width, n int) *onnxpb.ModelProto {
	w := make([]float32, width*width)
	for i := 0; i < width; i++ {
		w[i*width+i] = 1 // identity keeps values finite however long the chain
	}
	g := &onnxpb.GraphProto{
		Name:        "slow",
		Initializer: []*onnxpb.TensorProto{Float32Initializer("W", w, int64(width), int64(width))},
		Input:       []*onnxpb.ValueInfoProto{ValueInfo("x", onnxpb.TensorProto_FLOAT, "batch", int64(width))},
		Output:      []*onnxpb.ValueInfoProto{ValueInfo("y", onnxpb.TensorProto_FLOAT, "batch", int64(width))},
	}
	prev := "x"
	for i := 0; i < n; i++ {
		out := "h" + strconv.Itoa(i)
		if i == n-1 {
			out = "y"
		}
		g.Node = append(g.Node, node("MatMul", []string{prev, "W"}, []string{out}))
		prev = out
	}
	return Wrap(g, nil)
}

// Wrap puts a graph into a model with the package's opset and IR version 8.
func Wrap(g *onnxpb.GraphProto, metadata map[string]string) *onnxpb.ModelProto {
	m := &onnxpb.ModelProto{
		IrVersion:    8,
		ProducerName: "dapobench-testmodel",
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: "", Version: Opset}},
		Graph:        g,
	}
	for k, v := range metadata {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: k, Value: v})
	}
	return m
}

// Marshal serialises a model.
func Marshal(m *onnxpb.ModelProto) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("testmodel: marshal %s: %w", m.GetGraph().GetName(), err)
	}
	return b, nil
}

// Write saves a model at path. With external set, every initializer's bytes
// go to path+".data" and the model refers to them by relative file name, the
// layout large CLIP towers use to stay under protobuf's 2 GiB limit.
func Write(path string, m *onnxpb.ModelProto, external bool) error {
	m = proto.Clone(m).(*onnxpb.ModelProto)
	if external {
		dataName := filepath.Base(path) + ".data"
		var side []byte
		for _, t := range m.Graph.Initializer {
			off := len(side)
			side = append(side, t.RawData...)
			t.ExternalData = []*onnxpb.StringStringEntryProto{
				{Key: "location", Value: dataName},
				{Key: "offset", Value: strconv.Itoa(off)},
				{Key: "length", Value: strconv.Itoa(len(t.RawData))},
			}
			t.DataLocation = onnxpb.TensorProto_EXTERNAL
			t.RawData = nil
		}
		if err := os.WriteFile(filepath.Join(filepath.Dir(path), dataName), side, 0o644); err != nil {
			return fmt.Errorf("testmodel: %w", err)
		}
	}
	b, err := Marshal(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	return nil
}

// Float32Initializer stores data little-endian in raw_data.
func Float32Initializer(name string, data []float32, dims ...int64) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &onnxpb.TensorProto{Name: name, Dims: dims, DataType: int32(onnxpb.TensorProto_FLOAT), RawData: raw}
}

// ValueInfo describes a tensor; a string dimension is symbolic, an int64 fixed.
func ValueInfo(name string, et onnxpb.TensorProto_DataType, dims ...any) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		switch d := d.(type) {
		case string:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		case int64:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		default:
			panic(fmt.Sprintf("testmodel: dimension %v of %s is %T, want string or int64", d, name, d))
		}
	}
	return &onnxpb.ValueInfoProto{
		Name: name,
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(et), Shape: shape},
		}},
	}
}

func node(op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: op, Name: out[0] + "_" + op, Input: in, Output: out, Attribute: attrs}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INT, I: v}
}
