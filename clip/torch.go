package clip

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/internal/budget"
	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
)

// maxPickle bounds the pickle of a torch checkpoint (archive/data.pkl): it
// holds only the structure and tensor metadata, a few hundred kilobytes for
// a ViT-L state dict.
const maxPickle = 64 << 20

// readTorch reads a torch.save zip checkpoint (a state dict, or a dict of
// state dicts as DAPO and AnomalyCLIP save them).
//
// The file is untrusted: before anything is allocated, the pickle's
// declared lengths are checked against its own size (scanPickle), every
// storage's declared size against its record in the archive and against
// the tensor budget (persistentLoad), and every tensor's shape, strides and
// offset against its storage (torchTensor), so that a small crafted file
// is refused with an error instead of exhausting memory
// (docs/README.md#budgets-tensors).
func readTorch(file string) (map[string]Tensor, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	return readTorchFrom(file, f, st.Size())
}

// readTorchFrom is readTorch over the size bytes of r; file names them.
func readTorchFrom(file string, r io.ReaderAt, size int64) (out map[string]Tensor, err error) {
	z, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("clip: %s: not a torch checkpoint in torch.save's zip format (PyTorch ≥ 1.6; re-save a legacy file with a current torch.save): %w", file, err)
	}
	a := &torchArchive{size: size, records: map[string]*zip.File{}}
	var pkl *zip.File
	for _, f := range z.File {
		a.records[f.Name] = f
		switch path.Base(f.Name) {
		case "constants.pkl":
			return nil, fmt.Errorf("clip: %s: a TorchScript archive (as OpenAI's JIT ViT-L-14-336px.pt), not a state dict: use Hugging Face openai/clip-vit-large-patch14-336 safetensors or torch.save(model.state_dict())", file)
		case "data.pkl":
			if pkl == nil || len(f.Name) < len(pkl.Name) {
				pkl = f
			}
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("clip: %s: torch checkpoint: no data.pkl in the archive", file)
	}
	a.dataDir = path.Join(path.Dir(pkl.Name), "data")
	if a.tensors, err = budget.NewTensors(); err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	obj, err := a.unpickle(pkl)
	if err != nil {
		return nil, fmt.Errorf("clip: %s: torch checkpoint: %w", file, err)
	}
	out = map[string]Tensor{}
	if err := a.flatten("", obj, out, 0); err != nil {
		return nil, fmt.Errorf("clip: %s: %w", file, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("clip: %s: torch checkpoint holds no floating-point tensors", file)
	}
	return out, nil
}

// torchArchive is one checkpoint being read.
type torchArchive struct {
	size    int64                // of the file
	records map[string]*zip.File // by full name
	dataDir string               // folder of the storage records
	// storages are those loaded so far, by key; tensors counts the values
	// allocated for storages and tensor copies.
	storages map[string]loadedStorage
	tensors  *budget.Tensors
}

type loadedStorage struct {
	s     pytorch.StorageInterface
	numel int
}

// checkRecord refuses a zip record whose declared size its stored bytes
// cannot back: a stored record must lie inside the file, a deflated one
// can expand at most budget.DeflateRatio times.
func (a *torchArchive) checkRecord(f *zip.File) error {
	off, err := f.DataOffset()
	if err != nil {
		return err
	}
	c, u := f.CompressedSize64, f.UncompressedSize64
	if off < 0 || c > uint64(a.size) || uint64(off) > uint64(a.size)-c {
		return fmt.Errorf("record %s: %d bytes at offset %d run past the end of the %d-byte file", f.Name, c, off, a.size)
	}
	switch f.Method {
	case zip.Store:
		if c != u {
			return fmt.Errorf("record %s: stored with %d bytes but declares %d", f.Name, c, u)
		}
	case zip.Deflate:
		if u/budget.DeflateRatio > c {
			return fmt.Errorf("record %s: %d compressed bytes cannot expand to the %d it declares", f.Name, c, u)
		}
	default:
		return fmt.Errorf("record %s: compression method %d (torch.save stores its records)", f.Name, f.Method)
	}
	return nil
}

// unpickle reads data.pkl in full, checks it with scanPickle and unpickles
// it, with torch's classes and storages resolved by this reader.
func (a *torchArchive) unpickle(f *zip.File) (obj any, err error) {
	if err := a.checkRecord(f); err != nil {
		return nil, err
	}
	if f.UncompressedSize64 > maxPickle {
		return nil, fmt.Errorf("%s: %d bytes of pickle, more than the %d a checkpoint's structure needs", f.Name, f.UncompressedSize64, maxPickle)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, f.UncompressedSize64)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	if err := scanPickle(buf); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	a.storages = map[string]loadedStorage{}
	u := pickle.NewUnpickler(bytes.NewReader(buf))
	u.FindClass = findClass
	u.PersistentLoad = a.persistentLoad
	// The unpickler is not ours; a malformed pickle that slips past
	// scanPickle must still end as an error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			obj, err = nil, fmt.Errorf("%s: malformed pickle (%v)", f.Name, r)
		}
	}()
	return u.Load()
}

// storageTypes are the storage classes of torch with their element sizes.
var storageTypes = map[string]struct {
	class pytorch.StorageClassInterface
	size  int
}{
	"FloatStorage":    {&pytorch.FloatStorageClass{}, 4},
	"HalfStorage":     {&pytorch.HalfStorageClass{}, 2},
	"BFloat16Storage": {&pytorch.BFloat16StorageClass{}, 2},
	"DoubleStorage":   {&pytorch.DoubleStorageClass{}, 8},
	"LongStorage":     {&pytorch.LongStorageClass{}, 8},
	"IntStorage":      {&pytorch.IntStorageClass{}, 4},
	"ShortStorage":    {&pytorch.ShortStorageClass{}, 2},
	"CharStorage":     {&pytorch.CharStorageClass{}, 1},
	"ByteStorage":     {&pytorch.ByteStorageClass{}, 1},
	"BoolStorage":     {&pytorch.BoolStorageClass{}, 1},
}

// storageClass is a torch storage class as the pickle names it.
type storageClass struct {
	name string
	size int
	pytorch.StorageClassInterface
}

// persistentLoad resolves a persistent id ("storage", class, key,
// location, numel) to its storage, loaded once per key after checking the
// declared size against the record and the budget.
func (a *torchArchive) persistentLoad(id any) (any, error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() < 5 {
		return nil, fmt.Errorf("persistent id %v: want (\"storage\", class, key, location, numel)", id)
	}
	kind, _ := t.Get(0).(string)
	class, okc := t.Get(1).(storageClass)
	key, okk := t.Get(2).(string)
	location, okl := t.Get(3).(string)
	numel, okn := t.Get(4).(int)
	if kind != "storage" || !okc || !okk || !okl || !okn {
		return nil, fmt.Errorf("persistent id %v: want (\"storage\", class, key, location, numel)", id)
	}
	if s, ok := a.storages[key]; ok {
		if s.numel != numel {
			return nil, fmt.Errorf("storage %q declared with %d and %d values", key, s.numel, numel)
		}
		return s.s, nil
	}
	f := a.records[path.Join(a.dataDir, key)]
	if f == nil || strings.ContainsAny(key, "/\\") {
		return nil, fmt.Errorf("storage %q: no record %s in the archive", key, path.Join(a.dataDir, key))
	}
	if numel < 0 {
		return nil, fmt.Errorf("storage %q: %d values", key, numel)
	}
	if err := a.checkRecord(f); err != nil {
		return nil, fmt.Errorf("storage %q: %w", key, err)
	}
	if want := uint64(numel) * uint64(class.size); numel > 1<<56 || f.UncompressedSize64 != want {
		return nil, fmt.Errorf("storage %q: %s of %d values needs %d bytes, its record holds %d", key, class.name, numel, uint64(numel)*uint64(class.size), f.UncompressedSize64)
	}
	if err := a.tensors.Take(int64(numel), "storage "+strconv.Quote(key)); err != nil {
		return nil, err
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("storage %q: %w", key, err)
	}
	defer rc.Close()
	s := class.New(numel, location)
	if err := s.SetFromFileWithSize(rc, numel); err != nil {
		return nil, fmt.Errorf("storage %q: %w", key, err)
	}
	a.storages[key] = loadedStorage{s, numel}
	return s, nil
}

// findClass resolves the classes of a checkpoint's pickle: torch's storage
// classes and _rebuild_tensor_v2; a pickled nn.Parameter
// (torch._utils._rebuild_parameter) becomes its tensor; any other class
// becomes an inert object so that unrelated entries (argparse.Namespace,
// optimizer settings) do not stop the load, and nothing a pickle names is
// ever executed.
func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return &pytorch.RebuildTensorV2{}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return rebuildParameter{}, nil
	}
	if st, ok := storageTypes[name]; ok && module == "torch" {
		return storageClass{name, st.size, st.class}, nil
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

func (a *torchArchive) flatten(prefix string, v any, out map[string]Tensor, depth int) error {
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
				if err := a.flatten(k, e.Value, out, depth+1); err != nil {
					return err
				}
			}
		}
	case *types.OrderedDict:
		for el := v.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*types.OrderedDictEntry)
			if k, ok := join(e.Key); ok {
				if err := a.flatten(k, e.Value, out, depth+1); err != nil {
					return err
				}
			}
		}
	case *pytorch.Tensor:
		t, ok, err := a.torchTensor(v)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", prefix, err)
		}
		if ok {
			if _, dup := out[prefix]; dup {
				return fmt.Errorf("tensor %q: listed twice", prefix)
			}
			out[prefix] = t
		}
	}
	return nil
}

// torchTensor copies a (possibly strided) torch tensor of a floating-point
// storage into a C-order Tensor; ok is false for integer tensors. The view
// is checked against its storage before the copy is allocated: no negative
// size, stride or offset, no element outside the storage, and no more
// values than the storage holds (a stride-0 broadcast view of ten billion
// values over one float is refused, not expanded).
func (a *torchArchive) torchTensor(t *pytorch.Tensor) (Tensor, bool, error) {
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
	n, err := budget.Elements(t.Size)
	if err != nil {
		return Tensor{}, false, err
	}
	if n == 0 {
		return NewTensor(t.Size...), true, nil
	}
	if n > int64(len(data)) {
		return Tensor{}, false, fmt.Errorf("view of %v = %d values over a storage of %d (a broadcast view: save a contiguous copy)", t.Size, n, len(data))
	}
	// The extreme offset, grown one dimension at a time and compared
	// before it can overflow.
	outside := fmt.Errorf("view (offset %d, size %v, stride %v) outside its storage of %d", t.StorageOffset, t.Size, t.Stride, len(data))
	maxOff := t.StorageOffset
	if maxOff < 0 || maxOff >= len(data) {
		return Tensor{}, false, outside
	}
	for i, d := range t.Size {
		st := t.Stride[i]
		if st < 0 {
			return Tensor{}, false, fmt.Errorf("negative stride %v", t.Stride)
		}
		if d > 1 && st > 0 {
			if d-1 > (len(data)-1-maxOff)/st {
				return Tensor{}, false, outside
			}
			maxOff += (d - 1) * st
		}
	}
	if err := a.tensors.Take(n, "tensor copy"); err != nil {
		return Tensor{}, false, err
	}
	shape := append([]int{}, t.Size...)
	out := NewTensor(shape...)
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
