package loaders

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"

	"github.com/dapobench/dapobench/internal/parallel"
)

// check validates every sample of the set: image headers (size, complete
// file), mask presence and size, duplicates, and in deep mode the pixel
// data and mask values. Files are probed in parallel; the result does not
// depend on the order in which workers finish.
func (l *loader) check(ctx context.Context) error {
	s := l.set.Samples
	var errs errorList
	seen := make(map[string]int, len(s))
	for i := range s {
		if j, dup := seen[s[i].RelImage]; dup {
			errs.add(l.where(s[i].Category, s[i].Split).err(s[i].Provenance, 0, ErrDuplicate, "%s also listed at %s", s[i].RelImage, s[j].Provenance))
			continue
		}
		seen[s[i].RelImage] = i
	}
	if err := errs.err(); err != nil {
		return err
	}

	perSample := make([]error, len(s))
	// Header checks wait on the disk more than on the CPU: more workers
	// than cores.
	err := parallel.For(ctx, len(s), 4*runtime.GOMAXPROCS(0), func(_ context.Context, i int) error {
		perSample[i] = l.checkSample(&s[i])
		return nil
	})
	if err != nil {
		return err
	}
	for _, err := range perSample {
		errs.add(err)
	}
	return errs.err()
}

func (l *loader) checkSample(sm *Sample) error {
	w := l.where(sm.Category, sm.Split)
	iw, ih, err := probe(sm.ImagePath)
	if err != nil {
		return w.err(sm.RelImage, 0, kindOf(err, ErrCorruptImage), "%v", trimKind(err))
	}
	sm.Width, sm.Height = iw, ih
	if l.opt.Deep {
		if err := decodeFully(sm.ImagePath); err != nil {
			return w.err(sm.RelImage, 0, kindOf(err, ErrCorruptImage), "%v", trimKind(err))
		}
	}
	if sm.MaskPath == "" {
		if sm.Label == 1 {
			return w.err(sm.RelImage, 0, ErrNoMask, "")
		}
		return nil
	}
	mw, mh, err := probe(sm.MaskPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return w.err(sm.RelImage, 0, ErrMissingMask, "expected %s", sm.RelMask)
		}
		return w.err(sm.RelMask, 0, kindOf(err, ErrCorruptImage), "%v", trimKind(err))
	}
	if mw != iw || mh != ih {
		return w.err(sm.RelMask, 0, ErrSizeMismatch, "mask size %dx%d != image size %dx%d (%s)", mw, mh, iw, ih, sm.RelImage)
	}
	if l.opt.Deep || sm.Label == 0 {
		m, st, err := decodeMask(sm.MaskPath)
		if err != nil {
			return w.err(sm.RelMask, 0, kindOf(err, ErrCorruptImage), "%v", trimKind(err))
		}
		if sm.Label == 0 && m.Any() {
			return w.err(sm.RelMask, 0, ErrNormalMaskNotEmpty, "")
		}
		if !l.masksClassIndex && !st.Binary {
			return w.err(sm.RelMask, 0, ErrNonBinaryMask, "values %s, want {0,255} or {0,1}", formatValues(st.Values))
		}
	}
	if sm.Label == 0 {
		// An all-zero mask of a normal sample carries no information;
		// consumers synthesise an empty mask, as for any normal sample.
		sm.MaskPath, sm.RelMask = "", ""
	}
	return nil
}

func decodeFully(path string) error {
	_, err := decodeImage(path)
	return err
}

// kindOf returns err's own kind when it has one of ours, else def.
func kindOf(err, def error) error {
	for _, k := range []error{ErrTooLarge, ErrCorruptImage, ErrMissingMask} {
		if errors.Is(err, k) {
			return k
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return ErrMissingFile
	}
	return def
}

// trimKind strips a leading kind from err's message so that it is not
// printed twice.
func trimKind(err error) string {
	msg := err.Error()
	for _, k := range []error{ErrTooLarge, ErrCorruptImage} {
		p := k.Error() + ": "
		if len(msg) > len(p) && msg[:len(p)] == p {
			return msg[len(p):]
		}
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return msg
}

func formatValues(v []uint16) string {
	b := []byte{'{'}
	for i, x := range v {
		if i == 8 {
			b = append(b, ",…"...)
			break
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(x), 10)
	}
	return string(append(b, '}'))
}
