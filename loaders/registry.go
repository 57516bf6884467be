package loaders

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Dataset ids.
const (
	MVTec   = "mvtec"
	VisA    = "visa"
	MPDD    = "mpdd"
	MADSim  = "mad-sim"
	MADReal = "mad-real"
	RealIAD = "real-iad"
)

// Info describes one benchmark the harness reads.
type Info struct {
	ID         string
	Name       string
	URL        string   // where the dataset is published
	Categories []string // exact on-disk category names, in the reference order
	load       func(ctx context.Context, l *loader) error
}

// Datasets lists every benchmark, in the order tables show them.
func Datasets() []Info {
	return []Info{
		{MVTec, "MVTec-AD", "https://www.mvtec.com/company/research/datasets/mvtec-ad", mvtecCategories, loadMVTecStyle(mvtecStyle)},
		{VisA, "VisA", "https://github.com/amazon-science/spot-diff", visaCategories, loadVisA},
		{MPDD, "MPDD", "https://github.com/stepanje/MPDD", mpddCategories, loadMVTecStyle(mvtecStyle)},
		{MADSim, "MAD-Sim", "https://github.com/EricLee0224/PAD", madSimCategories, loadMVTecStyle(madSimStyle)},
		{MADReal, "MAD-Real", "https://github.com/EricLee0224/PAD", madRealCategories, loadMVTecStyle(madRealStyle)},
		{RealIAD, "Real-IAD", "https://realiad4ad.github.io/Real-IAD/", realIADCategories, loadRealIAD},
	}
}

// Lookup returns the dataset with the given id.
func Lookup(id string) (Info, error) {
	var ids []string
	for _, d := range Datasets() {
		if d.ID == id {
			return d, nil
		}
		ids = append(ids, d.ID)
	}
	return Info{}, fmt.Errorf("loaders: %w %q; valid: %s", ErrUnknownDataset, id, strings.Join(ids, ", "))
}

// Options selects what Load reads.
type Options struct {
	Root     string // dataset root directory
	Category string // one category; "" reads every category present
	// Protocol is the VisA split file (1cls, 2cls_fewshot, 2cls_highshot;
	// default 1cls) or the Real-IAD JSON set (default realiad_jsons).
	Protocol string
	// Resolution is the Real-IAD image folder (256, 512, 1024, raw); ""
	// takes the only one present.
	Resolution string
	// Views keeps only these Real-IAD cameras (C1..C5); nil keeps all.
	Views []string
	// Meta reads the samples from this CLIP-style meta.json (relative paths
	// resolved against Root) instead of from the directory layout.
	Meta string
	// Deep decodes every image and mask in full: it catches corrupt pixel
	// data, non-binary masks and non-empty masks of normal samples, at the
	// cost of reading every byte.
	Deep bool
}

// Set is a loaded dataset.
type Set struct {
	Dataset    string
	Root       string
	Layout     string // mvtec-style, visa-raw, visa-prepared, real-iad, meta.json
	Protocol   string // split protocol actually read
	Categories []string
	Samples    []Sample
	// Notes are facts about the tree a user should know that are not
	// errors, e.g. a missing VisA image_anno.csv (defect types unknown).
	Notes []string
}

// Load reads and validates one dataset. On invalid input it returns every
// problem found (up to a bound), each naming the dataset, category, split
// and file; it never returns a partial Set.
func Load(ctx context.Context, id string, opt Options) (*Set, error) {
	info, err := Lookup(id)
	if err != nil {
		return nil, err
	}
	if opt.Root == "" {
		return nil, fmt.Errorf("loaders: %s: no dataset root given", id)
	}
	root, err := filepath.Abs(opt.Root)
	if err != nil {
		return nil, fmt.Errorf("loaders: %s: %w", id, err)
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("loaders: %s: dataset root %s is not a directory", id, opt.Root)
	}
	if opt.Category != "" && !slices.Contains(info.Categories, opt.Category) {
		return nil, unknownCategory(info, opt.Category, "")
	}
	l := &loader{info: info, opt: opt, root: root, set: &Set{Dataset: id, Root: root}}
	if opt.Meta != "" {
		err = loadMeta(ctx, l)
	} else {
		err = info.load(ctx, l)
	}
	if err != nil {
		return nil, err
	}
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	l.sortSamples()
	if err := l.check(ctx); err != nil {
		return nil, err
	}
	return l.set, nil
}

func unknownCategory(info Info, name, file string) error {
	return &Error{Dataset: info.ID, Category: name, File: file,
		Err: fmt.Errorf("%w; valid: %s", ErrUnknownCategory, strings.Join(info.Categories, ", "))}
}

// loader is the state of one Load call.
type loader struct {
	info Info
	opt  Options
	root string
	set  *Set
	errs errorList
	// masksBinary is false where raw masks hold class ids (VisA raw).
	masksClassIndex bool
}

func (l *loader) where(category, split string) where {
	return where{dataset: l.info.ID, category: category, split: split}
}

// rel returns path relative to the root with '/' separators.
func (l *loader) rel(path string) string {
	r, err := filepath.Rel(l.root, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(r)
}

// resolve joins a '/'-separated relative path from a split or metadata file
// to base, refusing absolute paths and paths that leave the root.
func (l *loader) resolve(base, rel string) (string, error) {
	if rel == "" || filepath.IsAbs(rel) || strings.HasPrefix(rel, "/") || strings.Contains(rel, `\`) {
		return "", fmt.Errorf("%w: %q", ErrPathEscape, rel)
	}
	p := filepath.Join(base, filepath.FromSlash(rel))
	r, err := filepath.Rel(l.root, p)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: %q", ErrPathEscape, rel)
	}
	return p, nil
}

// categoryName is the name used in prompts: MAD-Sim folders drop their
// numeric prefix (01Gorilla → Gorilla), as the reference code does.
func categoryName(dataset, category string) string {
	if dataset == MADSim {
		return strings.TrimLeft(category, "0123456789")
	}
	return category
}

// listDirs returns the sub-directories of dir in natural order, skipping
// hidden entries; files are returned separately.
func listDir(dir string) (dirs, files []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		} else {
			files = append(files, e.Name())
		}
	}
	slices.SortFunc(dirs, naturalCompare)
	slices.SortFunc(files, naturalCompare)
	return dirs, files, nil
}

// presentCategories returns the category folders under dir: every known
// category present, in the reference order. A folder that is not a known
// category is an error listing the valid ones; files are ignored (releases
// ship licence and readme files at the root).
func (l *loader) presentCategories(dir string, ignore ...string) ([]string, error) {
	if l.opt.Category != "" {
		p := filepath.Join(dir, l.opt.Category)
		if st, err := os.Stat(p); err != nil || !st.IsDir() {
			return nil, l.where(l.opt.Category, "").err(l.rel(p), 0, ErrLayout, "category folder not found")
		}
		return []string{l.opt.Category}, nil
	}
	dirs, _, err := listDir(dir)
	if err != nil {
		return nil, fmt.Errorf("loaders: %s: %w", l.info.ID, err)
	}
	have := map[string]bool{}
	for _, d := range dirs {
		if slices.Contains(ignore, d) {
			continue
		}
		if !slices.Contains(l.info.Categories, d) {
			l.errs.add(unknownCategory(l.info, d, l.rel(filepath.Join(dir, d))))
			continue
		}
		have[d] = true
	}
	var cats []string
	for _, c := range l.info.Categories {
		if have[c] {
			cats = append(cats, c)
		}
	}
	if len(cats) == 0 && len(l.errs.errs) == 0 {
		return nil, l.where("", "").err(l.rel(dir), 0, ErrLayout, "no category folders (valid: %s)", strings.Join(l.info.Categories, ", "))
	}
	return cats, nil
}

// sortSamples puts samples in one canonical order whatever the source:
// category (reference order), split (train, test), then path in natural
// order. Split files list rows in no particular order; results must not
// depend on it.
func (l *loader) sortSamples() {
	rank := map[string]int{}
	for i, c := range l.info.Categories {
		rank[c] = i
	}
	slices.SortStableFunc(l.set.Samples, func(a, b Sample) int {
		if d := rank[a.Category] - rank[b.Category]; d != 0 {
			return d
		}
		if a.Split != b.Split {
			if a.Split == Train {
				return -1
			}
			return 1
		}
		return naturalCompare(a.RelImage, b.RelImage)
	})
}
