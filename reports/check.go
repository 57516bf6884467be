package reports

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dapobench/dapobench/results"
)

// ErrCannotCheck marks a check that could not be made: an unreadable or
// missing golden file or run, not a moved metric. dapobench check exits
// with status 3 on it, so that a broken check never reads as a regression.
var ErrCannotCheck = errors.New("could not check")

// CheckGolden returns what moved beyond tol between the golden results in
// the file golden and now (Drift). With update the golden file is about
// to be replaced by now, so one that does not exist yet is no error: it
// has nothing to move from. Every error wraps ErrCannotCheck.
func CheckGolden(golden string, now *results.Results, tol float64, update bool) ([]Change, error) {
	old, err := results.Read(golden)
	switch {
	case errors.Is(err, fs.ErrNotExist) && update:
		return nil, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: check: golden file %s does not exist; create it with --update", ErrCannotCheck, golden)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrCannotCheck, err)
	}
	changes, err := Drift(old, now, tol)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCannotCheck, err)
	}
	return changes, nil
}

// WriteGolden makes now the golden results in the file golden, creating
// its folder; the file is replaced whole or not at all (results.Write).
func WriteGolden(golden string, now *results.Results) error {
	if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	return results.Write(golden, now)
}
