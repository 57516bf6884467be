package loaders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dapobench/dapobench/internal/atomicfile"
)

// MetaRecord is one entry of the CLIP-style meta.json that AnomalyCLIP,
// APRIL-GAN, AdaCLIP and DAPO read. Field order is the reference
// generators' order.
type MetaRecord struct {
	ImgPath    string `json:"img_path"`
	MaskPath   string `json:"mask_path"`
	ClsName    string `json:"cls_name"`
	SpecieName string `json:"specie_name"`
	Anomaly    int    `json:"anomaly"`
}

// Meta is a parsed meta.json: split → category → records, with the
// category order of the file.
type Meta struct {
	Splits map[string]map[string][]MetaRecord
	Order  map[string][]string // split → categories in file order
}

// metaKeys are the accepted record key sets: the canonical five keys, and
// the product_cls/defect_cls spelling of the metas DAPO ships for MAD and
// VisA.
var metaKeys = [][]string{
	{"anomaly", "cls_name", "img_path", "mask_path", "specie_name"},
	{"anomaly", "defect_cls", "img_path", "mask_path", "product_cls"},
}

// ParseMeta reads a meta.json in the canonical schema
// {"train": {cls: [record…]}, "test": {…}} or in the variants DAPO ships:
// product_cls/defect_cls keys, and a top level keyed by category with no
// split level (read as the test split).
func ParseMeta(data []byte) (*Meta, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	top, order, err := decodeOrderedObject(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the top-level object")
	}
	m := &Meta{Splits: map[string]map[string][]MetaRecord{}, Order: map[string][]string{}}
	hasSplits := false
	for _, k := range order {
		if k == Train || k == Test || k == "validation" {
			hasSplits = true
		}
	}
	splits := map[string]json.RawMessage{Test: nil}
	splitOrder := []string{Test}
	if hasSplits {
		splits, splitOrder = top, order
	}
	for _, sp := range splitOrder {
		var byCat map[string]json.RawMessage
		var catOrder []string
		if hasSplits {
			if sp != Train && sp != Test && sp != "validation" {
				return nil, fmt.Errorf("unknown top-level key %q (want train, test)", sp)
			}
			var err error
			byCat, catOrder, err = decodeOrderedObject(json.NewDecoder(bytes.NewReader(splits[sp])))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sp, err)
			}
		} else {
			byCat, catOrder = top, order
		}
		m.Splits[sp] = map[string][]MetaRecord{}
		m.Order[sp] = catOrder
		for _, cat := range catOrder {
			var raws []json.RawMessage
			if err := json.Unmarshal(byCat[cat], &raws); err != nil {
				return nil, fmt.Errorf("%s.%s: want a list of records: %w", sp, cat, err)
			}
			recs := make([]MetaRecord, 0, len(raws))
			for i, raw := range raws {
				r, err := parseMetaRecord(raw)
				if err != nil {
					return nil, fmt.Errorf("%s.%s[%d]: %w", sp, cat, i, err)
				}
				recs = append(recs, r)
			}
			m.Splits[sp][cat] = recs
		}
	}
	return m, nil
}

func parseMetaRecord(raw json.RawMessage) (MetaRecord, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return MetaRecord{}, err
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, metaKeys[0]) && !slices.Equal(keys, metaKeys[1]) {
		return MetaRecord{}, fmt.Errorf("record keys %v, want %v or %v", keys, metaKeys[0], metaKeys[1])
	}
	var r MetaRecord
	str := func(k string, dst *string) error {
		if v, ok := fields[k]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return fmt.Errorf("%s: want a string", k)
			}
		}
		return nil
	}
	for k, dst := range map[string]*string{"img_path": &r.ImgPath, "mask_path": &r.MaskPath, "cls_name": &r.ClsName,
		"product_cls": &r.ClsName, "specie_name": &r.SpecieName, "defect_cls": &r.SpecieName} {
		if err := str(k, dst); err != nil {
			return r, err
		}
	}
	var a json.Number
	d := json.NewDecoder(bytes.NewReader(fields["anomaly"]))
	d.UseNumber()
	if err := d.Decode(&a); err != nil || (a != "0" && a != "1") {
		return r, fmt.Errorf("anomaly %s, want 0 or 1", fields["anomaly"])
	}
	if a == "1" {
		r.Anomaly = 1
	}
	if r.ImgPath == "" {
		return r, errors.New("empty img_path")
	}
	return r, nil
}

// decodeOrderedObject reads one JSON object, keeping its key order.
func decodeOrderedObject(dec *json.Decoder) (map[string]json.RawMessage, []string, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("want a JSON object, got %v", t)
	}
	out := map[string]json.RawMessage{}
	var order []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", k, err)
		}
		if _, dup := out[k]; dup {
			return nil, nil, fmt.Errorf("duplicate key %q", k)
		}
		out[k] = v
		order = append(order, k)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	return out, order, nil
}

// loadMeta builds the samples from Options.Meta instead of the layout.
func loadMeta(ctx context.Context, l *loader) error {
	p := l.opt.Meta
	if !filepath.IsAbs(p) && !fileExists(p) {
		p = filepath.Join(l.root, p)
	}
	rel := l.rel(p)
	w := l.where(l.opt.Category, "")
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return w.err(rel, 0, ErrSplitFileNotFound, "")
		}
		return w.err(rel, 0, ErrInvalidMetadata, "%v", err)
	}
	m, err := ParseMeta(data)
	if err != nil {
		return w.err(rel, 0, ErrInvalidMetadata, "%v", err)
	}
	l.set.Layout, l.set.Protocol = "meta.json", "meta.json"
	if l.info.ID == VisA {
		l.masksClassIndex = true
	}
	cats := map[string]bool{}
	for _, sp := range []string{Train, Test} {
		for _, key := range m.Order[sp] {
			if err := ctx.Err(); err != nil {
				return err
			}
			for i, r := range m.Splits[sp][key] {
				where := fmt.Sprintf("%s.%s[%d]", sp, key, i)
				// The key is the category, except in the MAD metas, whose
				// keys drop the numeric prefix (Gorilla) while paths keep
				// the folder name (01Gorilla/…).
				cat := key
				if !slices.Contains(l.info.Categories, cat) {
					cat = strings.SplitN(r.ImgPath, "/", 2)[0]
				}
				if !slices.Contains(l.info.Categories, cat) {
					l.errs.add(l.where(cat, sp).err(rel, 0, ErrUnknownCategory, "%s: img_path %q; valid: %s", where, r.ImgPath, strings.Join(l.info.Categories, ", ")))
					continue
				}
				if l.opt.Category != "" && cat != l.opt.Category {
					continue
				}
				sw := l.where(cat, sp)
				img, err := l.resolve(l.root, r.ImgPath)
				if err != nil {
					l.errs.add(sw.err(rel, 0, ErrPathEscape, "%s: img_path %q", where, r.ImgPath))
					continue
				}
				s := Sample{
					Dataset: l.info.ID, Category: cat, CategoryName: categoryName(l.info.ID, cat), Split: sp,
					Label: r.Anomaly, ImagePath: img, RelImage: r.ImgPath, SampleKey: r.ImgPath,
					Provenance: rel + ":" + where,
				}
				if l.info.ID == RealIAD {
					if m := realIADView.FindStringSubmatch(path.Base(r.ImgPath)); m != nil {
						s.View = m[1]
					}
					s.SampleKey = path.Dir(r.ImgPath)
				}
				if r.Anomaly == 1 {
					s.DefectType = r.SpecieName
					if r.MaskPath == "" {
						l.errs.add(sw.err(rel, 0, ErrNoMask, "%s: %s", where, r.ImgPath))
						continue
					}
				}
				if r.MaskPath != "" {
					mp, err := l.resolve(l.root, r.MaskPath)
					if err != nil {
						l.errs.add(sw.err(rel, 0, ErrPathEscape, "%s: mask_path %q", where, r.MaskPath))
						continue
					}
					s.MaskPath, s.RelMask = mp, r.MaskPath
				}
				cats[cat] = true
				l.set.Samples = append(l.set.Samples, s)
			}
		}
	}
	for _, c := range l.info.Categories {
		if cats[c] {
			l.set.Categories = append(l.set.Categories, c)
		}
	}
	if len(l.set.Categories) == 0 && len(l.errs.errs) == 0 {
		return w.err(rel, 0, ErrEmptySplit, "no records")
	}
	return nil
}

// MetaOf converts a loaded set to the canonical meta.json records:
// img_path and mask_path root-relative, cls_name the folder name,
// specie_name the defect type ("good" for normal samples).
func MetaOf(s *Set) *Meta {
	m := &Meta{Splits: map[string]map[string][]MetaRecord{}, Order: map[string][]string{}}
	for _, sm := range s.Samples {
		if m.Splits[sm.Split] == nil {
			m.Splits[sm.Split] = map[string][]MetaRecord{}
		}
		if _, ok := m.Splits[sm.Split][sm.Category]; !ok {
			m.Order[sm.Split] = append(m.Order[sm.Split], sm.Category)
		}
		specie := sm.DefectType
		if sm.Label == 0 {
			specie = good
		}
		m.Splits[sm.Split][sm.Category] = append(m.Splits[sm.Split][sm.Category], MetaRecord{
			ImgPath: sm.RelImage, MaskPath: sm.RelMask, ClsName: sm.Category, SpecieName: specie, Anomaly: sm.Label,
		})
	}
	return m
}

// WriteFile writes the meta (WriteTo) to path, creating its folder,
// through a temporary file renamed into place, so that an interrupted
// write never leaves half a meta.json.
func (m *Meta) WriteFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error { _, err := m.WriteTo(w); return err })
}

// WriteTo writes the meta in the reference generators' format: 4-space
// indent, a trailing newline, splits train then test, categories in order.
func (m *Meta) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, sp := range []string{Train, "validation", Test} {
		cats, ok := m.Splits[sp]
		if !ok {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, "%q:{", sp)
		for i, c := range m.Order[sp] {
			if i > 0 {
				b.WriteByte(',')
			}
			recs, err := json.Marshal(cats[c])
			if err != nil {
				return 0, err
			}
			if cats[c] == nil {
				recs = []byte("[]")
			}
			key, _ := json.Marshal(c)
			b.Write(key)
			b.WriteByte(':')
			b.Write(recs)
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "    "); err != nil {
		return 0, err
	}
	out.WriteByte('\n')
	n, err := w.Write(out.Bytes())
	return int64(n), err
}
