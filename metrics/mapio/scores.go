package mapio

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"strconv"
	"strings"
)

// ErrScores marks a malformed scores CSV.
var ErrScores = errors.New("malformed scores CSV")

// Scores are image-level scores keyed by the dataset-relative image path
// ('/'-separated, as loaders.Sample.RelImage).
type Scores map[string]float64

// ReadScoresFile reads a scores CSV file (ReadScores); a malformed file's
// error names it.
func ReadScoresFile(path string) (Scores, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := ReadScores(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ReadScores reads a CSV of path,score rows. A first row "path,score" is a
// header. Paths are cleaned ("./a//b" is "a/b", backslashes become '/'),
// and must be relative and stay inside the dataset. Duplicate paths, extra
// columns and non-finite scores are errors naming the line.
func ReadScores(r io.Reader) (Scores, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	out := Scores{}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("mapio: scores: %v: %w", err, ErrScores)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != 2 {
			return nil, fmt.Errorf("mapio: scores: line %d: %d fields, want path,score: %w", line, len(rec), ErrScores)
		}
		p, s := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if first && strings.EqualFold(p, "path") && strings.EqualFold(s, "score") {
			continue
		}
		key, err := cleanPath(p)
		if err != nil {
			return nil, fmt.Errorf("mapio: scores: line %d: %v: %w", line, err, ErrScores)
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("mapio: scores: line %d: score %q is not a finite number: %w", line, s, ErrScores)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("mapio: scores: line %d: %s appears twice: %w", line, key, ErrScores)
		}
		out[key] = v
	}
	return out, nil
}

func cleanPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	q := path.Clean(strings.ReplaceAll(p, "\\", "/"))
	if strings.HasPrefix(q, "/") || q == ".." || strings.HasPrefix(q, "../") || q == "." {
		return "", fmt.Errorf("path %q is not inside the dataset", p)
	}
	return q, nil
}
