package graph

import pb "github.com/dapobench/dapobench/internal/onnxpb"

// Ops are the ONNX operations every builder offers, written once over the
// two primitives a builder supplies: appending a node with one output, and
// adding an int64 constant. This package's Builder and onnx/grad's (which
// extends an existing model and infers shapes as it goes) both embed Ops.
// Each operation is one node with opset-17 semantics.
type Ops struct {
	emit func(op string, in []string, attrs ...*pb.AttributeProto) string
	ints func(scalar bool, vals ...int64) string
}

// NewOps returns the operations over a builder's primitives: emit appends
// one node and returns its output's name, ints adds an int64 constant (a
// scalar when scalar is set, else 1-D).
func NewOps(emit func(op string, in []string, attrs ...*pb.AttributeProto) string, ints func(scalar bool, vals ...int64) string) Ops {
	return Ops{emit: emit, ints: ints}
}

// AttrInt, AttrInts and AttrFloat are node attributes.
func AttrInt(name string, v int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_INT, I: v}
}

// AttrInts is an attribute holding int64s.
func AttrInts(name string, v ...int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_INTS, Ints: v}
}

// AttrFloat is an attribute holding one float.
func AttrFloat(name string, v float32) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_FLOAT, F: v}
}

// MatMul is numpy-style matrix multiplication with batch broadcasting.
func (o Ops) MatMul(x, y string) string { return o.emit("MatMul", []string{x, y}) }

// Add is element-wise addition with broadcasting.
func (o Ops) Add(x, y string) string { return o.emit("Add", []string{x, y}) }

// Sub is element-wise subtraction with broadcasting.
func (o Ops) Sub(x, y string) string { return o.emit("Sub", []string{x, y}) }

// Mul is element-wise multiplication with broadcasting.
func (o Ops) Mul(x, y string) string { return o.emit("Mul", []string{x, y}) }

// Div is element-wise division with broadcasting.
func (o Ops) Div(x, y string) string { return o.emit("Div", []string{x, y}) }

// Sigmoid is 1/(1+exp(−x)).
func (o Ops) Sigmoid(x string) string { return o.emit("Sigmoid", []string{x}) }

// Erf is the error function.
func (o Ops) Erf(x string) string { return o.emit("Erf", []string{x}) }

// Softmax normalises over axis (-1: the last; the class axis of a
// segmentation map is 1).
func (o Ops) Softmax(x string, axis int64) string {
	return o.emit("Softmax", []string{x}, AttrInt("axis", axis))
}

// LayerNorm normalises over the last axis with scale w and bias c.
func (o Ops) LayerNorm(x, w, c string, eps float32) string {
	return o.emit("LayerNormalization", []string{x, w, c}, AttrInt("axis", -1), AttrFloat("epsilon", eps))
}

// Transpose permutes axes.
func (o Ops) Transpose(x string, perm ...int64) string {
	return o.emit("Transpose", []string{x}, AttrInts("perm", perm...))
}

// Reshape reshapes x; a 0 copies the input's dimension, -1 is inferred.
func (o Ops) Reshape(x string, shape ...int64) string {
	return o.emit("Reshape", []string{x, o.ints(false, shape...)})
}

// Slice takes x[start:end] along axis.
func (o Ops) Slice(x string, axis, start, end int64) string {
	return o.emit("Slice", []string{x, o.ints(false, start), o.ints(false, end), o.ints(false, axis)})
}

// SliceLike takes x[:n] along axis, n being like's size along likeAxis: a
// prefix whose length is known only when the graph runs.
func (o Ops) SliceLike(x string, axis int64, like string, likeAxis int64) string {
	n := o.Slice(o.Shape(like), 0, likeAxis, likeAxis+1)
	return o.emit("Slice", []string{x, o.ints(false, 0), n, o.ints(false, axis)})
}

// Concat joins along axis.
func (o Ops) Concat(axis int64, xs ...string) string {
	return o.emit("Concat", xs, AttrInt("axis", axis))
}

// Gather takes x[..., idx, ...] along axis with an int64 index tensor.
func (o Ops) Gather(x, idx string, axis int64) string {
	return o.emit("Gather", []string{x, idx}, AttrInt("axis", axis))
}

// GatherElements picks x's elements along axis at idx (same rank as x);
// out-of-range indices are a run-time error.
func (o Ops) GatherElements(x, idx string, axis int64) string {
	return o.emit("GatherElements", []string{x, idx}, AttrInt("axis", axis))
}

// Expand broadcasts x to shape (an int64 tensor).
func (o Ops) Expand(x, shape string) string { return o.emit("Expand", []string{x, shape}) }

// Shape is x's shape as an int64 tensor.
func (o Ops) Shape(x string) string { return o.emit("Shape", []string{x}) }

// Cast converts x to dtype to.
func (o Ops) Cast(x string, to DType) string {
	return o.emit("Cast", []string{x}, AttrInt("to", int64(to)))
}

// Identity copies x.
func (o Ops) Identity(x string) string { return o.emit("Identity", []string{x}) }
