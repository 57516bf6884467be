package loaders

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// VisA protocols: the three split files of the raw release, and the
// MVTec-style tree that preparation scripts write.
const (
	VisA1cls         = "1cls"
	VisA2clsFewshot  = "2cls_fewshot"
	VisA2clsHighshot = "2cls_highshot"
	VisAPrepared     = "prepared"
)

// visaHeader is the exact header of split_csv/*.csv.
var visaHeader = []string{"object", "split", "label", "image", "mask"}

func loadVisA(ctx context.Context, l *loader) error {
	raw := fileExists(filepath.Join(l.root, "split_csv"))
	if !raw {
		for _, c := range visaCategories {
			if fileExists(filepath.Join(l.root, c, "Data", "Images")) {
				raw = true
				break
			}
		}
	}
	if l.opt.Protocol == VisAPrepared || (!raw && l.opt.Protocol == "") {
		// anomalib writes <root>/visa_pytorch/<cat>, spot-diff
		// <save>/1cls/<cat>; the root may also be that folder itself.
		base := l.root
		for _, sub := range []string{"visa_pytorch", "1cls"} {
			if hasPreparedCategory(filepath.Join(l.root, sub)) {
				base = filepath.Join(l.root, sub)
				break
			}
		}
		if err := l.loadDirStyle(ctx, base, visaPreparedStyle); err != nil {
			return err
		}
		l.set.Layout, l.set.Protocol = "visa-prepared", VisAPrepared
		return nil
	}
	proto := l.opt.Protocol
	if proto == "" {
		proto = VisA1cls
	}
	l.set.Layout, l.set.Protocol = "visa-raw", proto
	l.masksClassIndex = true
	return l.loadVisACSV(ctx, filepath.Join(l.root, "split_csv", proto+".csv"))
}

func (l *loader) loadVisACSV(ctx context.Context, path string) error {
	rel := l.rel(path)
	w := l.where(l.opt.Category, "")
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return w.err(rel, 0, ErrSplitFileNotFound, "")
		}
		return w.err(rel, 0, ErrInvalidMetadata, "%v", err)
	}
	defer f.Close()
	rows, err := readVisASplit(f)
	if err != nil {
		var re *rowError
		if errors.As(err, &re) {
			return w.err(rel, re.line, ErrInvalidMetadata, "%v", re.err)
		}
		return w.err(rel, 0, ErrInvalidMetadata, "%v", err)
	}

	type counts struct{ train, test int }
	seen := map[string]*counts{}
	annos := map[string]map[string]string{}
	for _, r := range rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !slices.Contains(visaCategories, r.object) {
			l.errs.add(w.err(rel, r.line, ErrInvalidMetadata, "unknown object %q; valid: %s", r.object, strings.Join(visaCategories, ", ")))
			continue
		}
		if l.opt.Category != "" && r.object != l.opt.Category {
			continue
		}
		rw := l.where(r.object, r.split)
		if seen[r.object] == nil {
			seen[r.object] = &counts{}
		}
		if r.split == Train {
			seen[r.object].train++
		} else {
			seen[r.object].test++
		}
		if !strings.HasPrefix(r.image, r.object+"/") {
			l.errs.add(rw.err(rel, r.line, ErrInvalidMetadata, "image %q is not under the %s folder", r.image, r.object))
			continue
		}
		img, err := l.resolve(l.root, r.image)
		if err != nil {
			l.errs.add(rw.err(rel, r.line, ErrPathEscape, "image %q", r.image))
			continue
		}
		s := Sample{
			Dataset: VisA, Category: r.object, CategoryName: r.object, Split: r.split,
			ImagePath: img, RelImage: r.image, SampleKey: r.image,
			Provenance: fmt.Sprintf("%s:%d", rel, r.line),
		}
		inAnomaly, inNormal := strings.Contains(r.image, "/Anomaly/"), strings.Contains(r.image, "/Normal/")
		switch {
		case r.label == "normal" && inAnomaly, r.label == "anomaly" && inNormal:
			l.errs.add(rw.err(rel, r.line, ErrLabelConflict, "label %s for %s", r.label, r.image))
			continue
		}
		if r.label == "anomaly" {
			s.Label = 1
			if r.mask == "" {
				l.errs.add(rw.err(rel, r.line, ErrNoMask, "%s", r.image))
				continue
			}
		}
		if r.mask != "" {
			m, err := l.resolve(l.root, r.mask)
			if err != nil {
				l.errs.add(rw.err(rel, r.line, ErrPathEscape, "mask %q", r.mask))
				continue
			}
			s.MaskPath, s.RelMask = m, r.mask
		}
		if s.Label == 1 {
			if annos[r.object] == nil {
				a, err := l.readImageAnno(r.object)
				if err != nil {
					l.errs.add(err)
					a = map[string]string{}
				}
				annos[r.object] = a
			}
			s.DefectType = annos[r.object][r.image]
		}
		l.set.Samples = append(l.set.Samples, s)
	}
	if l.opt.Category != "" && seen[l.opt.Category] == nil {
		return l.where(l.opt.Category, "").err(rel, 0, ErrEmptySplit, "no rows for this category")
	}
	for _, c := range visaCategories {
		n := seen[c]
		if n == nil {
			continue
		}
		l.set.Categories = append(l.set.Categories, c)
		if n.train == 0 {
			l.errs.add(l.where(c, Train).err(rel, 0, ErrEmptySplit, "no rows"))
		}
		if n.test == 0 {
			l.errs.add(l.where(c, Test).err(rel, 0, ErrEmptySplit, "no rows"))
		}
	}
	return nil
}

// visaRow is one data row of a VisA split file.
type visaRow struct {
	line                              int
	object, split, label, image, mask string
}

type rowError struct {
	line int
	err  error
}

func (e *rowError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }

// readVisASplit parses a VisA split CSV (header object,split,label,image,mask,
// CRLF or LF line endings) and checks every token.
func readVisASplit(r io.Reader) ([]visaRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(visaHeader)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &rowError{1, errors.New("empty file")}
	}
	if err != nil {
		return nil, csvRowError(err)
	}
	if !slices.Equal(header, visaHeader) {
		return nil, &rowError{1, fmt.Errorf("header %q, want %q", strings.Join(header, ","), strings.Join(visaHeader, ","))}
	}
	var rows []visaRow
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, csvRowError(err)
		}
		line, _ := cr.FieldPos(0)
		row := visaRow{line: line, object: rec[0], split: rec[1], label: rec[2], image: rec[3], mask: rec[4]}
		if row.split != Train && row.split != Test {
			return nil, &rowError{line, fmt.Errorf("split %q, want train or test", row.split)}
		}
		if row.label != "normal" && row.label != "anomaly" {
			return nil, &rowError{line, fmt.Errorf("label %q, want normal or anomaly", row.label)}
		}
		if row.image == "" {
			return nil, &rowError{line, errors.New("empty image path")}
		}
		rows = append(rows, row)
	}
}

func csvRowError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &rowError{pe.Line, pe.Err}
	}
	return err
}

// readImageAnno reads <cat>/image_anno.csv, the only source of VisA's
// image-level defect descriptions, as image path → label. A missing file is
// not an error (defect types are then unknown) but is recorded in the Set.
func (l *loader) readImageAnno(cat string) (map[string]string, error) {
	path := filepath.Join(l.root, cat, "image_anno.csv")
	rel := l.rel(path)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		l.set.Notes = append(l.set.Notes, fmt.Sprintf("visa: %s: %s not found; defect types of anomalous samples are unknown", cat, rel))
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, l.where(cat, "").err(rel, 0, ErrInvalidMetadata, "%v", err)
	}
	defer f.Close()
	m, err := readImageAnno(f)
	if err != nil {
		var re *rowError
		if errors.As(err, &re) {
			return nil, l.where(cat, "").err(rel, re.line, ErrInvalidMetadata, "%v", re.err)
		}
		return nil, l.where(cat, "").err(rel, 0, ErrInvalidMetadata, "%v", err)
	}
	return m, nil
}

func readImageAnno(r io.Reader) (map[string]string, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &rowError{1, errors.New("empty file")}
	}
	if err != nil {
		return nil, csvRowError(err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	ii, ok1 := col["image"]
	li, ok2 := col["label"]
	if !ok1 || !ok2 {
		return nil, &rowError{1, fmt.Errorf("header %q lacks image and label columns", strings.Join(header, ","))}
	}
	out := map[string]string{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, csvRowError(err)
		}
		line, _ := cr.FieldPos(0)
		if rec[ii] == "" {
			return nil, &rowError{line, errors.New("empty image path")}
		}
		if _, dup := out[rec[ii]]; dup {
			return nil, &rowError{line, fmt.Errorf("image %q listed twice", rec[ii])}
		}
		out[rec[ii]] = strings.TrimSpace(rec[li])
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func hasPreparedCategory(dir string) bool {
	for _, c := range visaCategories {
		if fileExists(filepath.Join(dir, c, Test)) {
			return true
		}
	}
	return false
}
