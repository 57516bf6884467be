package grad

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/dapobench/dapobench/internal/half"
	pb "github.com/dapobench/dapobench/internal/onnxpb"
)

// Element types, as TensorProto.DataType values.
const (
	tFloat   = int32(pb.TensorProto_FLOAT)
	tInt64   = int32(pb.TensorProto_INT64)
	tBool    = int32(pb.TensorProto_BOOL)
	tFloat16 = int32(pb.TensorProto_FLOAT16)
	tDouble  = int32(pb.TensorProto_DOUBLE)
	tInt32   = int32(pb.TensorProto_INT32)
)

// isFloat reports whether gradients can flow through values of type dt.
func isFloat(dt int32) bool { return dt == tFloat || dt == tFloat16 || dt == tDouble }

func dtName(dt int32) string {
	if n, ok := pb.TensorProto_DataType_name[dt]; ok {
		return n
	}
	return fmt.Sprintf("type %d", dt)
}

// floatTensor encodes vals as a tensor of float type dt.
func floatTensor(name string, dt int32, dims []int64, vals []float64) (*pb.TensorProto, error) {
	t := &pb.TensorProto{Name: name, DataType: dt, Dims: dims}
	switch dt {
	case tFloat:
		t.RawData = make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(t.RawData[4*i:], math.Float32bits(float32(v)))
		}
	case tDouble:
		t.RawData = make([]byte, 8*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint64(t.RawData[8*i:], math.Float64bits(v))
		}
	case tFloat16:
		t.RawData = make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint16(t.RawData[2*i:], half.FromFloat32(float32(v)))
		}
	default:
		return nil, fmt.Errorf("constant %s: element type %s is not a float type", name, dtName(dt))
	}
	return t, nil
}

func intTensor(name string, scalar bool, vals []int64) *pb.TensorProto {
	t := &pb.TensorProto{Name: name, DataType: tInt64}
	if !scalar {
		t.Dims = []int64{int64(len(vals))}
	}
	t.RawData = make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(t.RawData[8*i:], uint64(v))
	}
	return t
}

func numel(dims []int64) (int64, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in %v", dims)
		}
		if d > 0 && n > math.MaxInt32*int64(1024)/d {
			return 0, fmt.Errorf("shape %v is too large", dims)
		}
		n *= d
	}
	return n, nil
}

// tensorInts decodes an INT64 or INT32 tensor stored in the model.
func tensorInts(t *pb.TensorProto) ([]int64, error) {
	if t.GetDataLocation() == pb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("tensor %s: external data is not read here", t.GetName())
	}
	n, err := numel(t.GetDims())
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.GetName(), err)
	}
	var out []int64
	switch t.GetDataType() {
	case tInt64:
		if raw := t.GetRawData(); raw != nil {
			if int64(len(raw)) != 8*n {
				return nil, fmt.Errorf("tensor %s: %d raw bytes for %d int64 values", t.GetName(), len(raw), n)
			}
			out = make([]int64, n)
			for i := range out {
				out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		} else {
			out = append(out, t.GetInt64Data()...)
		}
	case tInt32:
		if raw := t.GetRawData(); raw != nil {
			if int64(len(raw)) != 4*n {
				return nil, fmt.Errorf("tensor %s: %d raw bytes for %d int32 values", t.GetName(), len(raw), n)
			}
			out = make([]int64, n)
			for i := range out {
				out[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
			}
		} else {
			for _, v := range t.GetInt32Data() {
				out = append(out, int64(v))
			}
		}
	default:
		return nil, fmt.Errorf("tensor %s: element type %s, want an integer type", t.GetName(), dtName(t.GetDataType()))
	}
	if int64(len(out)) != n {
		return nil, fmt.Errorf("tensor %s: %d values for shape %v", t.GetName(), len(out), t.GetDims())
	}
	return out, nil
}

// tensorFloats decodes a FLOAT, FLOAT16 or DOUBLE tensor stored in the model.
func tensorFloats(t *pb.TensorProto) ([]float64, error) {
	if t.GetDataLocation() == pb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("tensor %s: external data is not read here; load the model with its weights inline", t.GetName())
	}
	n, err := numel(t.GetDims())
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.GetName(), err)
	}
	raw := t.GetRawData()
	out := make([]float64, 0, n)
	switch t.GetDataType() {
	case tFloat:
		if raw != nil {
			if int64(len(raw)) != 4*n {
				return nil, fmt.Errorf("tensor %s: %d raw bytes for %d float values", t.GetName(), len(raw), n)
			}
			for i := int64(0); i < n; i++ {
				out = append(out, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))))
			}
		} else {
			for _, v := range t.GetFloatData() {
				out = append(out, float64(v))
			}
		}
	case tDouble:
		if raw != nil {
			if int64(len(raw)) != 8*n {
				return nil, fmt.Errorf("tensor %s: %d raw bytes for %d double values", t.GetName(), len(raw), n)
			}
			for i := int64(0); i < n; i++ {
				out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
			}
		} else {
			out = append(out, t.GetDoubleData()...)
		}
	case tFloat16:
		if raw != nil {
			if int64(len(raw)) != 2*n {
				return nil, fmt.Errorf("tensor %s: %d raw bytes for %d float16 values", t.GetName(), len(raw), n)
			}
			for i := int64(0); i < n; i++ {
				out = append(out, float64(half.ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))))
			}
		} else {
			// float16 values are stored one per int32 element when not raw.
			for _, v := range t.GetInt32Data() {
				out = append(out, float64(half.ToFloat32(uint16(v))))
			}
		}
	default:
		return nil, fmt.Errorf("tensor %s: element type %s, want a float type", t.GetName(), dtName(t.GetDataType()))
	}
	if int64(len(out)) != n {
		return nil, fmt.Errorf("tensor %s: %d values for shape %v", t.GetName(), len(out), t.GetDims())
	}
	return out, nil
}

// Attribute helpers.

func attrString(name, v string) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_STRING, S: []byte(v)}
}

func attrTensor(name string, t *pb.TensorProto) *pb.AttributeProto {
	return &pb.AttributeProto{Name: name, Type: pb.AttributeProto_TENSOR, T: t}
}

func findAttr(n *pb.NodeProto, name string) *pb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func getInt(n *pb.NodeProto, name string, def int64) int64 {
	if a := findAttr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

func getInts(n *pb.NodeProto, name string) ([]int64, bool) {
	if a := findAttr(n, name); a != nil {
		return a.GetInts(), true
	}
	return nil, false
}

func getFloat(n *pb.NodeProto, name string, def float32) float32 {
	if a := findAttr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

// input returns the i-th input name of n, or "" when absent.
func input(n *pb.NodeProto, i int) string {
	if i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}

func nodeLabel(n *pb.NodeProto) string {
	if n.GetName() != "" {
		return fmt.Sprintf("node %q (%s)", n.GetName(), n.GetOpType())
	}
	out := ""
	if len(n.GetOutput()) > 0 {
		out = n.GetOutput()[0]
	}
	return fmt.Sprintf("%s node producing %q", n.GetOpType(), out)
}
