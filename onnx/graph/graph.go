// Package graph builds ONNX models from a small, explicit set of
// operations.
//
// The CLIP towers are written against this builder rather than against
// protobuf messages, so that every operation a tower uses is visible in one
// place: a later reverse-mode differentiation pass over the same graphs
// only has to know these operations.
package graph

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/dapobench/dapobench/internal/half"
	pb "github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/internal/rawfloat"
)

// Opset is the ONNX operator-set version the graphs use; 17 is the first
// with LayerNormalization, and onnxruntime 1.24 runs it.
const Opset = 17

// IRVersion is the ONNX IR version written into models (the version of
// internal/onnxpb's proto).
const IRVersion = 8

// DType is an ONNX tensor element type.
type DType int32

// The element types the towers use.
const (
	Float32 = DType(pb.TensorProto_FLOAT)
	Float16 = DType(pb.TensorProto_FLOAT16)
	Int64   = DType(pb.TensorProto_INT64)
	Bool    = DType(pb.TensorProto_BOOL)
)

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Float16:
		return "float16"
	case Int64:
		return "int64"
	case Bool:
		return "bool"
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// Dim is one dimension of a graph input or output: a size, or a name for
// a dimension chosen at run time (the batch).
type Dim struct {
	Size  int64
	Param string
}

// N is a fixed dimension.
func N(n int) Dim { return Dim{Size: int64(n)} }

// Sym is a symbolic dimension.
func Sym(name string) Dim { return Dim{Param: name} }

// Builder accumulates one graph. Values are referred to by name. Float is
// the element type of weights and computation (Float32, or Float16 for
// the fp16 build); graph inputs and outputs stay float32 and are cast at
// the boundary by the caller through In and Out.
type Builder struct {
	Ops
	Float DType

	nodes   []*pb.NodeProto
	inits   []*pb.TensorProto
	inputs  []*pb.ValueInfoProto
	outputs []*pb.ValueInfoProto
	names   map[string]bool
	counter int
	ext     *External // nil: initializers are held in memory
}

// New returns an empty builder computing in dtype float (Float32 or Float16).
func New(float DType) *Builder {
	b := &Builder{Float: float, names: map[string]bool{}}
	b.Ops = NewOps(b.op, b.Ints)
	return b
}

func (b *Builder) fresh(prefix string) string {
	for {
		b.counter++
		n := prefix + "_" + strconv.Itoa(b.counter)
		if !b.names[n] {
			b.names[n] = true
			return n
		}
	}
}

func (b *Builder) claim(name string) string {
	if b.names[name] {
		panic("graph: duplicate value name " + name) // programming error in a tower, not input
	}
	b.names[name] = true
	return name
}

func valueInfo(name string, dt DType, dims []Dim) *pb.ValueInfoProto {
	shape := &pb.TensorShapeProto{}
	for _, d := range dims {
		if d.Param != "" {
			shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}})
		} else {
			shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: d.Size}})
		}
	}
	return &pb.ValueInfoProto{Name: name, Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{ElemType: int32(dt), Shape: shape}}}}
}

// Input declares a graph input.
func (b *Builder) Input(name string, dt DType, dims ...Dim) string {
	b.inputs = append(b.inputs, valueInfo(b.claim(name), dt, dims))
	return name
}

// Output declares v as the graph output called name.
func (b *Builder) Output(v, name string, dt DType, dims ...Dim) {
	if v != name {
		b.node("Identity", []string{v}, []string{b.claim(name)})
	}
	b.outputs = append(b.outputs, valueInfo(name, dt, dims))
}

// In casts a float32 graph input to the compute type.
func (b *Builder) In(x string) string {
	if b.Float == Float32 {
		return x
	}
	return b.Cast(x, b.Float)
}

// Out casts a computed value back to float32 for a graph output.
func (b *Builder) Out(x string) string {
	if b.Float == Float32 {
		return x
	}
	return b.Cast(x, Float32)
}

// Weight adds an initializer holding data (float32 values, stored in the
// compute type) and returns its name.
func (b *Builder) Weight(name string, shape []int, data []float32) string {
	return b.weight(b.claim(name), shape, data)
}

func (b *Builder) weight(name string, shape []int, data []float32) string {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(data) {
		panic(fmt.Sprintf("graph: weight %s: %d values for shape %v", name, len(data), shape))
	}
	t := &pb.TensorProto{Name: name, DataType: int32(b.Float), Dims: dims64(shape)}
	size := 4
	put := func(dst []byte, v []float32) {
		for i, x := range v {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(x))
		}
	}
	if b.Float == Float16 {
		size = 2
		put = func(dst []byte, v []float32) {
			for i, x := range v {
				binary.LittleEndian.PutUint16(dst[2*i:], half.FromFloat32(x))
			}
		}
	}
	raw, le := rawfloat.Bytes(data)
	switch {
	case b.ext != nil && size*len(data) >= externalMin && le && size == 4:
		b.ext.addRaw(t, raw) // float32 values are their own encoding
	case b.ext != nil && size*len(data) >= externalMin:
		b.ext.add(t, size*len(data), size, func(dst []byte, from int) { put(dst, data[from:from+len(dst)/size]) })
	case le && size == 4:
		t.RawData = append([]byte(nil), raw...)
	default:
		t.RawData = make([]byte, size*len(data))
		put(t.RawData, data)
	}
	b.inits = append(b.inits, t)
	return name
}

// Const adds a small float constant in the compute type.
func (b *Builder) Const(shape []int, data ...float32) string {
	return b.weight(b.fresh("const"), shape, data)
}

// Scalar adds a float scalar constant in the compute type.
func (b *Builder) Scalar(v float32) string { return b.Const(nil, v) }

// Ints adds an int64 constant (shapes, axes, indices). A nil shape makes
// a scalar; otherwise the constant is 1-D.
func (b *Builder) Ints(scalar bool, vals ...int64) string {
	t := &pb.TensorProto{Name: b.fresh("ints"), DataType: int32(Int64)}
	if !scalar {
		t.Dims = []int64{int64(len(vals))}
	}
	put := func(dst []byte, from int) {
		for i, v := range vals[from : from+len(dst)/8] {
			binary.LittleEndian.PutUint64(dst[8*i:], uint64(v))
		}
	}
	if b.ext != nil && 8*len(vals) >= externalMin {
		b.ext.add(t, 8*len(vals), 8, put)
	} else {
		t.RawData = make([]byte, 8*len(vals))
		put(t.RawData, 0)
	}
	b.inits = append(b.inits, t)
	return t.Name
}

// StreamTo sends every initializer of externalMin bytes or more made from
// now on to x instead of holding it in memory: the builder of a large tower
// then keeps only the graph's structure, and the weights are written once,
// as they are made.
func (b *Builder) StreamTo(x *External) { b.ext = x }

func dims64(shape []int) []int64 {
	out := make([]int64, len(shape))
	for i, d := range shape {
		out[i] = int64(d)
	}
	return out
}

func (b *Builder) node(op string, in, out []string, attrs ...*pb.AttributeProto) {
	b.nodes = append(b.nodes, &pb.NodeProto{OpType: op, Name: op + "_" + strconv.Itoa(len(b.nodes)), Input: in, Output: out, Attribute: attrs})
}

func (b *Builder) op(op string, in []string, attrs ...*pb.AttributeProto) string {
	out := b.fresh(op)
	b.node(op, in, []string{out}, attrs...)
	return out
}

// Model returns the finished model. Metadata entries are written in the
// order given.
func (b *Builder) Model(name string, meta [][2]string) *pb.ModelProto {
	m := &pb.ModelProto{
		IrVersion:    IRVersion,
		OpsetImport:  []*pb.OperatorSetIdProto{{Domain: "", Version: Opset}},
		ProducerName: "dapobench",
		Graph: &pb.GraphProto{
			Name:        name,
			Node:        b.nodes,
			Initializer: b.inits,
			Input:       b.inputs,
			Output:      b.outputs,
		},
	}
	for _, kv := range meta {
		m.MetadataProps = append(m.MetadataProps, &pb.StringStringEntryProto{Key: kv[0], Value: kv[1]})
	}
	return m
}
