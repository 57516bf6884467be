// Package studies holds the shipped study plans (docs/cluster.md#study-plan):
// DAPO's zero-shot protocol, the DAPO ablation grid and the fixture study,
// embedded so that `dapobench demo` runs the fixture study from any folder
// (RunFixtures).
package studies

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dapobench/dapobench/internal/atomicfile"
)

// Plan file names.
const (
	ZeroShot = "zero-shot.yaml"
	Ablation = "dapo-ablation.yaml"
	Fixtures = "fixtures.yaml"
)

//go:embed *.yaml
var files embed.FS

// Write copies every shipped plan into dir (plans extend each other by
// relative path) and returns dir.
func Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("studies: %w", err)
	}
	names, err := fs.Glob(files, "*.yaml")
	if err != nil {
		return "", err
	}
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return "", err
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, n), b); err != nil {
			return "", fmt.Errorf("studies: %w", err)
		}
	}
	return dir, nil
}
