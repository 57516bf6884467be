package graph

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/dapobench/dapobench/internal/atomicfile"
	pb "github.com/dapobench/dapobench/internal/onnxpb"
)

// externalAlign aligns each tensor in an external data file so that
// onnxruntime can map it directly.
const externalAlign = 4096

// Marshal serialises m deterministically: the same model always gives the
// same bytes.
func Marshal(m *pb.ModelProto) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("graph: marshal %s: %w", m.GetGraph().GetName(), err)
	}
	return b, nil
}

// WriteFile writes m to path. When external is true, every initializer's
// bytes go to path+".data" instead (ONNX external data), which keeps the
// protobuf under its 2 GiB limit for ViT-L. Files are written to a
// temporary name and renamed, so an interrupted write leaves nothing
// half-written. m's initializers are modified in place when external.
func WriteFile(path string, m *pb.ModelProto, external bool) error {
	if external {
		dataName := filepath.Base(path) + ".data"
		if err := writeExternal(filepath.Join(filepath.Dir(path), dataName), dataName, m); err != nil {
			return err
		}
	}
	b, err := Marshal(m)
	if err != nil {
		return err
	}
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// externalMin is the size from which an initializer goes to the external
// data file; shape constants and small tensors stay inline.
const externalMin = 1024

// External is an ONNX external-data file being written by a Builder
// (StreamTo): each initializer's bytes are encoded straight into it, at an
// offset aligned as WriteFile aligns it, so that a streamed model and
// WriteFile(external) write the same bytes.
type External struct {
	w        io.Writer
	location string
	off      int64
	buf      []byte
	err      error
}

// NewExternal streams initializers to w, the file named location beside
// the model (its base name, as the model's external_data entries say).
func NewExternal(w io.Writer, location string) *External {
	return &External{w: w, location: location, buf: make([]byte, 1<<16)}
}

// Err is the first write error, if any; the model is incomplete then.
func (x *External) Err() error { return x.err }

// add writes n bytes that fill produces (fill(dst, from) encodes the
// values from index from into dst, whose length is a multiple of elem) and
// points t at them.
func (x *External) add(t *pb.TensorProto, n, elem int, fill func(dst []byte, from int)) {
	x.pad()
	step := len(x.buf) / elem * elem
	for done := 0; done < n; done += step {
		k := min(step, n-done)
		fill(x.buf[:k], done/elem)
		x.write(x.buf[:k])
	}
	x.point(t, n)
}

// addRaw writes bytes that are already the tensor's encoding.
func (x *External) addRaw(t *pb.TensorProto, raw []byte) {
	x.pad()
	x.write(raw)
	x.point(t, len(raw))
}

func (x *External) pad() {
	if pad := (externalAlign - x.off%externalAlign) % externalAlign; pad > 0 {
		x.write(make([]byte, pad))
		x.off += pad
	}
}

// point makes t refer to the n bytes just written.
func (x *External) point(t *pb.TensorProto, n int) {
	t.DataLocation = pb.TensorProto_EXTERNAL
	t.ExternalData = []*pb.StringStringEntryProto{
		{Key: "location", Value: x.location},
		{Key: "offset", Value: strconv.FormatInt(x.off, 10)},
		{Key: "length", Value: strconv.Itoa(n)},
	}
	x.off += int64(n)
}

func (x *External) write(b []byte) {
	if x.err == nil {
		_, x.err = x.w.Write(b)
	}
}

func writeExternal(path, location string, m *pb.ModelProto) error {
	return writeAtomic(path, func(w io.Writer) error {
		var off int64
		for _, t := range m.GetGraph().GetInitializer() {
			if len(t.RawData) < externalMin {
				continue // shape constants stay inline
			}
			if pad := (externalAlign - off%externalAlign) % externalAlign; pad > 0 {
				if _, err := w.Write(make([]byte, pad)); err != nil {
					return err
				}
				off += pad
			}
			if _, err := w.Write(t.RawData); err != nil {
				return err
			}
			t.DataLocation = pb.TensorProto_EXTERNAL
			t.ExternalData = []*pb.StringStringEntryProto{
				{Key: "location", Value: location},
				{Key: "offset", Value: strconv.FormatInt(off, 10)},
				{Key: "length", Value: strconv.Itoa(len(t.RawData))},
			}
			off += int64(len(t.RawData))
			t.RawData = nil
		}
		return nil
	})
}

func writeAtomic(path string, fill func(io.Writer) error) error {
	if err := atomicfile.Write(path, fill); err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	return nil
}
