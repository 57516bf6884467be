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

func writeExternal(path, location string, m *pb.ModelProto) error {
	return writeAtomic(path, func(w io.Writer) error {
		var off int64
		for _, t := range m.GetGraph().GetInitializer() {
			if len(t.RawData) < 1024 {
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
