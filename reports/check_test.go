package reports

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/results"
)

func TestCheckGolden(t *testing.T) {
	now := mpdd(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "golden", "mpdd.json")

	// A missing golden file cannot be checked, but an update creates it.
	if _, err := CheckGolden(missing, now, DefaultTolerance, false); !errors.Is(err, ErrCannotCheck) || !strings.Contains(err.Error(), "create it with --update") {
		t.Errorf("missing: %v", err)
	}
	if c, err := CheckGolden(missing, now, DefaultTolerance, true); err != nil || c != nil {
		t.Errorf("missing, update: %v %v", c, err)
	}
	if err := WriteGolden(missing, now); err != nil {
		t.Fatal(err)
	}
	if c, err := CheckGolden(missing, now, DefaultTolerance, false); err != nil || len(c) != 0 {
		t.Errorf("same results: %v %v", c, err)
	}

	// What moved is listed, with or without update.
	moved, err := results.Read(missing)
	if err != nil {
		t.Fatal(err)
	}
	*moved.Categories["tubes"].Metrics[results.ImageAUROC] += 1e-3
	for _, update := range []bool{false, true} {
		if c, err := CheckGolden(missing, moved, DefaultTolerance, update); err != nil || len(c) != 1 || c[0].Where != "tubes" {
			t.Errorf("update %v: %+v %v", update, c, err)
		}
	}

	// An unreadable golden file is no regression.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema":`), 0o644)
	if _, err := CheckGolden(bad, now, DefaultTolerance, true); !errors.Is(err, ErrCannotCheck) {
		t.Errorf("bad golden file: %v", err)
	}
}
