package loaders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// RealIADDefaultSet is the multi-view JSON split set of the release.
const RealIADDefaultSet = "realiad_jsons"

// realIADResolutions are the image folders of the release.
var realIADResolutions = []string{"256", "512", "1024", "raw"}

// realIADView finds the camera token in a Real-IAD file name
// (…_NG_BX_C3_20231023111538.jpg).
var realIADView = regexp.MustCompile(`_(C[1-5])_`)

func loadRealIAD(ctx context.Context, l *loader) error {
	l.set.Layout = "real-iad"
	imgRoot, err := l.realIADImageDir()
	if err != nil {
		return err
	}
	set := l.opt.Protocol
	if set == "" {
		set = RealIADDefaultSet
	}
	l.set.Protocol = set
	// The official README puts the JSON sets beside the image folders;
	// anomalib and others unzip them into a folder of the same name.
	jsonDir := filepath.Join(l.root, set)
	if nested := filepath.Join(jsonDir, set); fileExists(nested) {
		jsonDir = nested
	}
	if !fileExists(jsonDir) {
		return l.where(l.opt.Category, "").err(l.rel(jsonDir), 0, ErrSplitFileNotFound, "JSON set folder not found")
	}
	cats, err := l.presentCategories(imgRoot)
	if err != nil {
		return err
	}
	for _, c := range cats {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.set.Categories = append(l.set.Categories, c)
		l.loadRealIADCategory(c, filepath.Join(jsonDir, c+".json"), imgRoot)
	}
	return nil
}

// realIADImageDir finds realiad_<res>: the one asked for, or the only one
// present.
func (l *loader) realIADImageDir() (string, error) {
	if r := l.opt.Resolution; r != "" {
		r = strings.TrimPrefix(r, "realiad_") // checked by checkOptions
		d := filepath.Join(l.root, "realiad_"+r)
		if !fileExists(d) {
			return "", l.where("", "").err(l.rel(d), 0, ErrLayout, "image folder not found")
		}
		return d, nil
	}
	var found []string
	for _, r := range realIADResolutions {
		if fileExists(filepath.Join(l.root, "realiad_"+r)) {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return "", l.where("", "").err(".", 0, ErrLayout, "no image folder realiad_256, realiad_512, realiad_1024 or realiad_raw")
	case 1:
		return filepath.Join(l.root, "realiad_"+found[0]), nil
	}
	return "", l.where("", "").err(".", 0, ErrLayout, "several image folders (%s); choose one with the resolution option", strings.Join(found, ", "))
}

// realIADFile is the JSON split file of one Real-IAD category.
type realIADFile struct {
	Meta  *realIADMeta      `json:"meta"`
	Train []json.RawMessage `json:"train"`
	Test  []json.RawMessage `json:"test"`
}

type realIADMeta struct {
	Prefix      string `json:"prefix"`
	NormalClass string `json:"normal_class"`
}

// realIADRecord has exactly the four keys the official reader asserts.
type realIADRecord struct {
	Category     string  `json:"category"`
	AnomalyClass string  `json:"anomaly_class"`
	ImagePath    string  `json:"image_path"`
	MaskPath     *string `json:"mask_path"`
}

var realIADKeys = []string{"anomaly_class", "category", "image_path", "mask_path"}

func (l *loader) loadRealIADCategory(cat, jsonPath, imgRoot string) {
	rel := l.rel(jsonPath)
	w := l.where(cat, "")
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			l.errs.add(w.err(rel, 0, ErrSplitFileNotFound, ""))
		} else {
			l.errs.add(w.err(rel, 0, ErrInvalidMetadata, "%v", err))
		}
		return
	}
	f, err := parseRealIAD(data)
	if err != nil {
		l.errs.add(w.err(rel, 0, ErrInvalidMetadata, "%v", err))
		return
	}
	normal := f.Meta.NormalClass
	if normal == "" {
		normal = "OK"
	}
	catDir := filepath.Join(imgRoot, cat)
	if f.Meta.Prefix != "" {
		// The official reader joins <image dir>/<meta.prefix>/<image_path>.
		d, err := l.resolve(imgRoot, strings.TrimSuffix(f.Meta.Prefix, "/"))
		if err != nil {
			l.errs.add(w.err(rel, 0, ErrPathEscape, "meta.prefix %q", f.Meta.Prefix))
			return
		}
		catDir = d
	}
	for _, split := range []struct {
		name string
		recs []json.RawMessage
	}{{Train, f.Train}, {Test, f.Test}} {
		sw := w.in(split.name)
		kept := 0
		for i, raw := range split.recs {
			where := fmt.Sprintf("%s[%d]", split.name, i)
			rec, err := parseRealIADRecord(raw)
			if err != nil {
				l.errs.add(sw.err(rel, 0, ErrInvalidMetadata, "%s: %v", where, err))
				continue
			}
			if rec.Category != cat {
				l.errs.add(sw.err(rel, 0, ErrInvalidMetadata, "%s: category %q in the file of %s", where, rec.Category, cat))
				continue
			}
			if _, ok := realIADCodes[rec.AnomalyClass]; !ok && rec.AnomalyClass != normal {
				l.errs.add(sw.err(rel, 0, ErrInvalidMetadata, "%s: unknown anomaly_class %q", where, rec.AnomalyClass))
				continue
			}
			img, err := l.resolve(catDir, rec.ImagePath)
			if err != nil {
				l.errs.add(sw.err(rel, 0, ErrPathEscape, "%s: image_path %q", where, rec.ImagePath))
				continue
			}
			view := ""
			if m := realIADView.FindStringSubmatch(path.Base(rec.ImagePath)); m != nil {
				view = m[1]
			}
			if len(l.opt.Views) > 0 && !slices.Contains(l.opt.Views, view) {
				continue
			}
			// Labels come from the JSON only: views of a defective sample
			// in which the defect is not visible are OK with no mask,
			// although they live under NG/.
			s := Sample{
				Dataset: RealIAD, Category: cat, CategoryName: cat, Split: split.name,
				ImagePath: img, RelImage: l.rel(img), View: view,
				SampleKey:  cat + "/" + path.Dir(rec.ImagePath),
				Provenance: rel + ":" + where,
			}
			if rec.AnomalyClass != normal {
				s.Label = 1
				s.DefectType = rec.AnomalyClass
				if rec.MaskPath == nil {
					l.errs.add(sw.err(rel, 0, ErrNoMask, "%s: %s (anomaly_class %s, mask_path null)", where, rec.ImagePath, rec.AnomalyClass))
					continue
				}
			}
			if rec.MaskPath != nil {
				m, err := l.resolve(catDir, *rec.MaskPath)
				if err != nil {
					l.errs.add(sw.err(rel, 0, ErrPathEscape, "%s: mask_path %q", where, *rec.MaskPath))
					continue
				}
				s.MaskPath, s.RelMask = m, l.rel(m)
			}
			l.set.Samples = append(l.set.Samples, s)
			kept++
		}
		if kept == 0 {
			l.errs.add(sw.err(rel, 0, ErrEmptySplit, "no records"))
		}
	}
}

// parseRealIAD checks the top level of a Real-IAD JSON: meta, train and
// test must be present, as the official reader asserts.
func parseRealIAD(data []byte) (*realIADFile, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	for _, k := range []string{"meta", "train", "test"} {
		if v, ok := top[k]; !ok || string(v) == "null" {
			return nil, fmt.Errorf("missing top-level key %q", k)
		}
	}
	var f realIADFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

func parseRealIADRecord(raw json.RawMessage) (*realIADRecord, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, err
	}
	got := make([]string, 0, len(keys))
	for k := range keys {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, realIADKeys) {
		return nil, fmt.Errorf("record keys %v, want exactly %v", got, realIADKeys)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var r realIADRecord
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if r.ImagePath == "" {
		return nil, errors.New("empty image_path")
	}
	if r.MaskPath != nil && *r.MaskPath == "" {
		return nil, errors.New("empty mask_path (want null or a path)")
	}
	return &r, nil
}
