package loaders

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of invalid input. Every loader error wraps exactly one of them, so
// callers and tests can tell cases apart with errors.Is.
var (
	ErrMissingMask        = errors.New("missing mask for anomalous sample")
	ErrNoMask             = errors.New("anomalous sample has no mask")
	ErrOrphanMask         = errors.New("mask without image")
	ErrSizeMismatch       = errors.New("mask size does not match image size")
	ErrUnknownCategory    = errors.New("unknown category")
	ErrUnknownDataset     = errors.New("unknown dataset")
	ErrCorruptImage       = errors.New("cannot decode image")
	ErrTooLarge           = errors.New("image too large")
	ErrSplitFileNotFound  = errors.New("split file not found")
	ErrEmptySplit         = errors.New("empty split")
	ErrInvalidMetadata    = errors.New("invalid metadata")
	ErrPathEscape         = errors.New("path escapes dataset root")
	ErrDuplicate          = errors.New("duplicate sample")
	ErrLabelConflict      = errors.New("label contradicts path")
	ErrNormalMaskNotEmpty = errors.New("normal sample has a non-empty mask")
	ErrNonBinaryMask      = errors.New("mask is not binary")
	ErrLayout             = errors.New("unexpected dataset layout")
	ErrBadLink            = errors.New("broken symbolic link")
)

// Error is an invalid-input error with the place it was found. File is
// root-relative where the file lies under the root.
type Error struct {
	Dataset  string
	Category string
	Split    string
	File     string
	Line     int // 1-based row of a split file; 0 when not applicable
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("loaders: ")
	for _, s := range []string{e.Dataset, e.Category, e.Split} {
		if s != "" {
			b.WriteString(s)
			b.WriteString(": ")
		}
	}
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// where carries the context of the errors a loader reports.
type where struct {
	dataset, category, split string
}

func (w where) err(file string, line int, kind error, format string, args ...any) *Error {
	err := kind
	if format != "" {
		err = fmt.Errorf("%w: "+format, append([]any{kind}, args...)...)
	}
	return &Error{Dataset: w.dataset, Category: w.category, Split: w.split, File: file, Line: line, Err: err}
}

func (w where) in(split string) where { w.split = split; return w }

// maxErrors bounds how many problems one load reports; a tree that is wrong
// everywhere should not print ten thousand lines.
const maxErrors = 20

// errorList collects the problems of one load so that a user sees all of
// them (up to maxErrors) in one run rather than one per attempt.
type errorList struct {
	errs    []error
	dropped int
}

func (l *errorList) add(err error) {
	if err == nil {
		return
	}
	if len(l.errs) < maxErrors {
		l.errs = append(l.errs, err)
	} else {
		l.dropped++
	}
}

func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	if l.dropped > 0 {
		l.errs = append(l.errs, fmt.Errorf("loaders: … and %d more problems", l.dropped))
	}
	return errors.Join(l.errs...)
}

// ErrMissingFile is a sample file that a split file or layout names but
// that does not exist.
var ErrMissingFile = errors.New("file not found")
