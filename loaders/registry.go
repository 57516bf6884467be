package loaders

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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

// IDs lists the id of every benchmark, in the order of Datasets.
func IDs() []string {
	var ids []string
	for _, d := range Datasets() {
		ids = append(ids, d.ID)
	}
	return ids
}

// Lookup returns the dataset with the given id.
func Lookup(id string) (Info, error) {
	for _, d := range Datasets() {
		if d.ID == id {
			return d, nil
		}
	}
	return Info{}, fmt.Errorf("loaders: %w %q; valid: %s", ErrUnknownDataset, id, strings.Join(IDs(), ", "))
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
	if err := checkOptions(info, opt); err != nil {
		return nil, err
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

// ErrOption marks an option that does not apply to the dataset or has a
// value the dataset does not know: a usage error, not a problem with the
// data. Options are checked before the tree is read
// (docs/data.md#loaders-options).
var ErrOption = errors.New("invalid dataset option")

// optionError is an error that is also an ErrOption.
type optionError struct{ err error }

func (e optionError) Error() string   { return e.err.Error() }
func (e optionError) Unwrap() []error { return []error{e.err, ErrOption} }

// checkOptions refuses options the dataset has no use for, rather than
// ignoring them: a protocol for a dataset with one split, a resolution or
// views outside Real-IAD, any of them beside a meta.json (which fixes the
// samples), and values the dataset does not know.
func checkOptions(info Info, opt Options) error {
	bad := func(format string, args ...any) error {
		return optionError{fmt.Errorf("loaders: %s: "+format, append([]any{info.ID}, args...)...)}
	}
	if opt.Category != "" && !slices.Contains(info.Categories, opt.Category) {
		return optionError{unknownCategory(info, opt.Category, "")}
	}
	if opt.Meta != "" {
		for _, o := range []struct {
			name string
			set  bool
		}{{"protocol", opt.Protocol != ""}, {"resolution", opt.Resolution != ""}, {"views", opt.Views != nil}} {
			if o.set {
				return bad("the %s option does not apply with a meta.json, which lists the samples itself", o.name)
			}
		}
	}
	if opt.Protocol != "" {
		switch info.ID {
		case VisA:
			if !slices.Contains([]string{VisA1cls, VisA2clsFewshot, VisA2clsHighshot, VisAPrepared}, opt.Protocol) {
				return bad("unknown protocol %q; valid: %s, %s, %s, %s", opt.Protocol, VisA1cls, VisA2clsFewshot, VisA2clsHighshot, VisAPrepared)
			}
		case RealIAD:
			if !strings.HasPrefix(opt.Protocol, RealIADDefaultSet) || strings.ContainsAny(opt.Protocol, `/\`) {
				return bad("unknown JSON set %q (want realiad_jsons, realiad_jsons_sv, realiad_jsons_fuiad_0.1, …)", opt.Protocol)
			}
		default:
			return bad("the protocol option does not apply: %s has one split (protocols are VisA's split files and Real-IAD's JSON sets)", info.ID)
		}
	}
	if info.ID != RealIAD {
		if opt.Resolution != "" {
			return bad("the resolution option does not apply: only Real-IAD ships several image resolutions")
		}
		if opt.Views != nil {
			return bad("the views option does not apply: only Real-IAD has camera views")
		}
	}
	if r := strings.TrimPrefix(opt.Resolution, "realiad_"); opt.Resolution != "" && !slices.Contains(realIADResolutions, r) {
		return bad("unknown resolution %q (want %s)", opt.Resolution, strings.Join(realIADResolutions, ", "))
	}
	for _, v := range opt.Views {
		if !slices.Contains([]string{"C1", "C2", "C3", "C4", "C5"}, v) {
			return bad("unknown view %q (want C1..C5)", v)
		}
	}
	return nil
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

// listDir returns the sub-directories of dir in natural order, skipping
// hidden entries; files are returned separately. Symbolic links are
// followed, to folders as to files (datasets are often assembled from
// several disks with ln -s): a link to a folder counts as a folder. A
// link that points nowhere, or into a loop (a chain of links that never
// ends, or a folder that contains itself), is an error naming the link
// (docs/data.md#loaders-symlinks), never silently dropped.
func (l *loader) listDir(dir string) (dirs, files []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			p := filepath.Join(dir, e.Name())
			fi, err := l.followLink(p)
			if err != nil {
				l.errs.add(&Error{Dataset: l.info.ID, File: l.rel(p), Err: err})
				continue
			}
			isDir = fi.IsDir()
		}
		if isDir {
			dirs = append(dirs, e.Name())
		} else {
			files = append(files, e.Name())
		}
	}
	slices.SortFunc(dirs, naturalCompare)
	slices.SortFunc(files, naturalCompare)
	return dirs, files, nil
}

// followLink resolves a symbolic link, refusing a dangling one and one
// that loops.
func (l *loader) followLink(p string) (fs.FileInfo, error) {
	target, _ := os.Readlink(p)
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("%w: symbolic link to %s loops", ErrBadLink, target)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: symbolic link to %s, which does not exist", ErrBadLink, target)
	case err != nil:
		return nil, fmt.Errorf("%w: symbolic link to %s: %v", ErrBadLink, target, err)
	}
	if fi.IsDir() {
		// A folder that contains the link itself would contain itself
		// again and again.
		real, err := filepath.EvalSymlinks(p)
		parent, perr := filepath.EvalSymlinks(filepath.Dir(p))
		if err == nil && perr == nil && (real == parent || strings.HasPrefix(parent, real+string(filepath.Separator))) {
			return nil, fmt.Errorf("%w: symbolic link to %s loops (the folder contains the link)", ErrBadLink, target)
		}
	}
	return fi, nil
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
	dirs, _, err := l.listDir(dir)
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

// CheckOutside refuses an output path (a run directory, a results file)
// that lies inside the dataset root: files written there would become part
// of the tree, which the next scan reports as unexpected and a careless
// copy ships as data. Both paths are compared after resolving symbolic
// links, so a link cannot hide the overlap. The error is an ErrOption.
func CheckOutside(root, out string) error {
	r, err := resolvePath(root)
	if err != nil {
		return nil // no root to protect: Load reports it
	}
	o, err := resolvePath(out)
	if err != nil {
		return fmt.Errorf("loaders: output %s: %w", out, err)
	}
	if rel, err := filepath.Rel(r, o); err == nil && filepath.IsLocal(rel) || o == r {
		return optionError{fmt.Errorf("loaders: output %s lies inside the dataset root %s: choose a folder outside the dataset", out, root)}
	}
	return nil
}

// resolvePath is p made absolute with every symbolic link of its longest
// existing prefix resolved; the part that does not exist yet is kept as
// written.
func resolvePath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for cur := abs; ; {
		if real, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}
