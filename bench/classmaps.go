package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/results"
)

// classFile collects, while a category streams by, the index of the class
// maps saved for it.
type classFile struct {
	idx results.ClassIndex
}

func newClassFile(category string, classes []string) *classFile {
	return &classFile{idx: results.ClassIndex{Category: category, Classes: classes,
		DefectTypes: map[string]int{}, ClassScores: map[string][]float64{}}}
}

// save writes one image's class maps as <stem>.classes.npy under maps/ and
// notes its class scores and defect type.
func (f *classFile) save(out string, s loaders.Sample, o *Output, size int, classOf func(string) (int, bool)) error {
	if len(o.ClassMaps) != len(f.idx.Classes) {
		return fmt.Errorf("bench: %s: %d class maps for %d classes", s.RelImage, len(o.ClassMaps), len(f.idx.Classes))
	}
	data := make([]float32, 0, len(o.ClassMaps)*size*size)
	for _, m := range o.ClassMaps {
		if len(m) != size*size {
			return fmt.Errorf("bench: %s: class map has %d values, want %d×%d", s.RelImage, len(m), size, size)
		}
		data = append(data, m...)
	}
	p := filepath.Join(out, results.MapsDir, filepath.FromSlash(strings.TrimSuffix(s.RelImage, path.Ext(s.RelImage))+results.ClassMapsExt))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := npy.WriteFile(p, []int{len(o.ClassMaps), size, size}, data); err != nil {
		return err
	}
	if o.ClassScores != nil {
		f.idx.ClassScores[s.RelImage] = o.ClassScores
	}
	if s.Label == 1 {
		if k, ok := classOf(s.DefectType); ok && k > 0 {
			f.idx.DefectTypes[s.DefectType] = k
		}
	}
	return nil
}

// write stores the index, with the scheme's seen classes.
func (f *classFile) write(out string, s Scheme) error {
	if voc, ok := s.(Vocabulary); ok {
		f.idx.Vocabulary = true
		for _, c := range f.idx.Classes {
			if voc.Seen(c) {
				f.idx.Seen = append(f.idx.Seen, c)
			}
		}
	}
	p := results.ClassIndexFile(filepath.Join(out, results.MapsDir), f.idx.Category)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return writeJSON(p, f.idx)
}

// readClassIndex reads a category's class-map index from a maps folder;
// ok is false when the folder has none.
func readClassIndex(maps, category string) (idx *results.ClassIndex, ok bool, err error) {
	p := results.ClassIndexFile(maps, category)
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("bench: %w", err)
	}
	idx = &results.ClassIndex{}
	if err := json.Unmarshal(b, idx); err != nil {
		return nil, false, fmt.Errorf("bench: %s: %w", p, err)
	}
	if len(idx.Classes) < 2 {
		return nil, false, fmt.Errorf("bench: %s: classes %v: want the normal class and at least one defect class", p, idx.Classes)
	}
	for t, k := range idx.DefectTypes {
		if k < 1 || k >= len(idx.Classes) {
			return nil, false, fmt.Errorf("bench: %s: defect type %q has class %d, outside 1…%d", p, t, k, len(idx.Classes)-1)
		}
	}
	return idx, true, nil
}
