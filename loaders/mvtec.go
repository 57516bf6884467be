package loaders

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// dirStyle describes a dataset whose split is its directory tree:
// <cat>/train/good, <cat>/test/<defect>, <cat>/ground_truth/<defect>.
// MVTec-AD, MPDD, MAD-Sim, MAD-Real and prepared VisA share it and differ
// only in file extensions and mask names.
type dirStyle struct {
	imageExt   string // case-sensitive, as the releases ship it
	maskSuffix string // mask file = stem + maskSuffix
	// goodMasks allows ground_truth/good/ (listed by the MAD metas); its
	// masks must be empty.
	goodMasks bool
	// anomalousOnly is the one defect folder allowed beside "good"
	// (prepared VisA always uses "bad"); empty allows any folder.
	anomalousOnly string
}

var (
	mvtecStyle        = dirStyle{imageExt: ".png", maskSuffix: "_mask.png"}
	madSimStyle       = dirStyle{imageExt: ".png", maskSuffix: "_mask.png", goodMasks: true}
	madRealStyle      = dirStyle{imageExt: ".jpg", maskSuffix: ".png", goodMasks: true}
	visaPreparedStyle = dirStyle{imageExt: ".JPG", maskSuffix: ".png", anomalousOnly: "bad"}
)

const good = "good"

func loadMVTecStyle(st dirStyle) func(context.Context, *loader) error {
	return func(ctx context.Context, l *loader) error {
		return l.loadDirStyle(ctx, l.root, st)
	}
}

func (l *loader) loadDirStyle(ctx context.Context, base string, st dirStyle) error {
	l.set.Layout = "mvtec-style"
	l.set.Protocol = "dir"
	cats, err := l.presentCategories(base)
	if err != nil {
		return err
	}
	for _, c := range cats {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.set.Categories = append(l.set.Categories, c)
		l.loadDirCategory(filepath.Join(base, c), c, st)
	}
	return nil
}

func (l *loader) loadDirCategory(dir, cat string, st dirStyle) {
	w := l.where(cat, "")
	for _, sub := range []string{Train, Test} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			l.errs.add(w.in(sub).err(l.rel(filepath.Join(dir, sub)), 0, ErrLayout, "split folder not found"))
			return
		}
	}
	dirs, _, err := l.listDir(dir)
	if err != nil {
		l.errs.add(w.err(l.rel(dir), 0, ErrLayout, "%v", err))
		return
	}
	for _, d := range dirs {
		if d != Train && d != Test && d != "ground_truth" {
			l.errs.add(w.err(l.rel(filepath.Join(dir, d)), 0, ErrLayout, "unexpected folder (want train, test, ground_truth)"))
		}
	}

	// train: normal images only.
	trainDirs, trainFiles, _ := l.listDir(filepath.Join(dir, Train))
	l.unexpectedFiles(w.in(Train), filepath.Join(dir, Train), trainFiles)
	for _, d := range trainDirs {
		if d != good {
			l.errs.add(w.in(Train).err(l.rel(filepath.Join(dir, Train, d)), 0, ErrLayout, "unexpected folder in train (only %q holds training images)", good))
		}
	}
	if !slices.Contains(trainDirs, good) {
		l.errs.add(w.in(Train).err(l.rel(filepath.Join(dir, Train, good)), 0, ErrLayout, "folder not found"))
	} else if l.addImages(w.in(Train), dir, Train, good, "", st) == 0 {
		l.errs.add(w.in(Train).err(l.rel(filepath.Join(dir, Train, good)), 0, ErrEmptySplit, "no %s images", st.imageExt))
	}

	// test: good plus one folder per defect type, masks in ground_truth.
	testDirs, testFiles, _ := l.listDir(filepath.Join(dir, Test))
	l.unexpectedFiles(w.in(Test), filepath.Join(dir, Test), testFiles)
	gtDirs, gtFiles, err := l.listDir(filepath.Join(dir, "ground_truth"))
	if err != nil && !os.IsNotExist(err) {
		l.errs.add(w.in(Test).err(l.rel(filepath.Join(dir, "ground_truth")), 0, ErrLayout, "%v", err))
	}
	l.unexpectedFiles(w.in(Test), filepath.Join(dir, "ground_truth"), gtFiles)
	n := 0
	for _, d := range testDirs {
		if st.anomalousOnly != "" && d != good && d != st.anomalousOnly {
			l.errs.add(w.in(Test).err(l.rel(filepath.Join(dir, Test, d)), 0, ErrLayout, "unexpected folder (want %s, %s)", good, st.anomalousOnly))
			continue
		}
		gt := ""
		if d != good || (st.goodMasks && slices.Contains(gtDirs, good)) {
			gt = filepath.Join(dir, "ground_truth", d)
		}
		n += l.addImages(w.in(Test), dir, Test, d, gt, st)
	}
	for _, d := range gtDirs {
		if d == good && !st.goodMasks {
			l.errs.add(w.in(Test).err(l.rel(filepath.Join(dir, "ground_truth", d)), 0, ErrLayout, "normal images have no masks in this dataset"))
			continue
		}
		if !slices.Contains(testDirs, d) {
			_, files, _ := l.listDir(filepath.Join(dir, "ground_truth", d))
			for _, f := range files {
				l.errs.add(w.in(Test).err(l.rel(filepath.Join(dir, "ground_truth", d, f)), 0, ErrOrphanMask, "no folder test/%s", d))
			}
		}
	}
	if n == 0 {
		l.errs.add(w.in(Test).err(l.rel(filepath.Join(dir, Test)), 0, ErrEmptySplit, "no %s images", st.imageExt))
	}
}

// addImages appends the images of <dir>/<split>/<folder> and pairs each with
// its mask in gtDir by stem (never by position: MAD's unpadded stems sort
// differently from their mask names). Masks without an image are errors.
func (l *loader) addImages(w where, dir, split, folder, gtDir string, st dirStyle) int {
	imgDir := filepath.Join(dir, split, folder)
	subdirs, files, err := l.listDir(imgDir)
	if err != nil {
		l.errs.add(w.err(l.rel(imgDir), 0, ErrLayout, "%v", err))
		return 0
	}
	for _, d := range subdirs {
		l.errs.add(w.err(l.rel(filepath.Join(imgDir, d)), 0, ErrLayout, "unexpected folder"))
	}
	masks := map[string]bool{}
	if gtDir != "" {
		_, mfiles, err := l.listDir(gtDir)
		if err != nil && !os.IsNotExist(err) {
			l.errs.add(w.err(l.rel(gtDir), 0, ErrLayout, "%v", err))
		}
		for _, f := range mfiles {
			masks[f] = true
		}
	}
	n := 0
	for _, f := range files {
		stem, ok := strings.CutSuffix(f, st.imageExt)
		if !ok || stem == "" {
			l.errs.add(w.err(l.rel(filepath.Join(imgDir, f)), 0, ErrLayout, "unexpected file (images are %s)", st.imageExt))
			continue
		}
		p := filepath.Join(imgDir, f)
		s := Sample{
			Dataset:      l.info.ID,
			Category:     filepath.Base(dir),
			CategoryName: categoryName(l.info.ID, filepath.Base(dir)),
			Split:        split,
			ImagePath:    p,
			RelImage:     l.rel(p),
			Provenance:   l.rel(imgDir),
		}
		s.SampleKey = s.RelImage
		if folder != good {
			s.Label = 1
			s.DefectType = folder
		}
		if gtDir != "" {
			mname := stem + st.maskSuffix
			mp := filepath.Join(gtDir, mname)
			if masks[mname] {
				delete(masks, mname)
				s.MaskPath, s.RelMask = mp, l.rel(mp)
			} else if s.Label == 1 {
				l.errs.add(w.err(s.RelImage, 0, ErrMissingMask, "expected %s", l.rel(mp)))
				continue
			}
		}
		l.set.Samples = append(l.set.Samples, s)
		n++
	}
	left := make([]string, 0, len(masks))
	for m := range masks {
		left = append(left, m)
	}
	slices.SortFunc(left, naturalCompare)
	for _, m := range left {
		l.errs.add(w.err(l.rel(filepath.Join(gtDir, m)), 0, ErrOrphanMask, "no image %s/%s", folder, strings.TrimSuffix(m, st.maskSuffix)+st.imageExt))
	}
	return n
}

func (l *loader) unexpectedFiles(w where, dir string, files []string) {
	for _, f := range files {
		l.errs.add(w.err(l.rel(filepath.Join(dir, f)), 0, ErrLayout, "unexpected file (expected only folders here)"))
	}
}
