package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LibraryEnv names the environment variable that points at the onnxruntime
// shared library. It wins over every other location.
const LibraryEnv = "ONNXRUNTIME_LIB"

// ORTVersion is the onnxruntime release the runner is built against
// (onnxruntime_go v1.27.0 asks for C API 24). `make setup` caches its CPU
// library under .cache/onnxruntime-<ORTVersion>/ in the module root.
const ORTVersion = "1.24.1"

// libName is the shared library's file name on Linux.
const libName = "libonnxruntime.so.1"

// setupCache is the library's path relative to the module root, as written by
// `make setup` (scripts/setup-onnxruntime.sh).
var setupCache = filepath.Join(".cache", "onnxruntime-"+ORTVersion, libName)

// FindLibrary returns the path of the onnxruntime shared library: explicit if
// not empty, else $ONNXRUNTIME_LIB, else the `make setup` cache found by
// walking up from the working directory to the module root (so tests in any
// package find it), else the cache or the library next to the executable.
// A path given explicitly or through the environment must exist; the search
// never falls back past it, so a typo does not silently pick another build.
func FindLibrary(explicit string) (string, error) {
	for _, p := range []struct{ path, source string }{
		{explicit, "Options.Library"},
		{os.Getenv(LibraryEnv), "$" + LibraryEnv},
	} {
		if p.path == "" {
			continue
		}
		if err := isFile(p.path); err != nil {
			return "", fmt.Errorf("runner: onnxruntime library from %s: %w; run `make setup` to fetch it", p.source, err)
		}
		return p.path, nil
	}
	var tried []string
	if wd, err := os.Getwd(); err == nil {
		if p, ok := walkUp(wd, &tried); ok {
			return p, nil
		}
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			dir := filepath.Dir(exe)
			p := filepath.Join(dir, libName)
			tried = append(tried, p)
			if isFile(p) == nil {
				return p, nil
			}
			if p, ok := walkUp(dir, &tried); ok {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("runner: onnxruntime %s library not found (looked for %s); run `make setup` in the repository to fetch it, or set %s to its path",
		ORTVersion, strings.Join(tried, ", "), LibraryEnv)
}

// walkUp looks for the setup cache in dir and its parents, stopping at the
// first folder that holds go.mod (the module root) or at the filesystem root.
func walkUp(dir string, tried *[]string) (string, bool) {
	for {
		p := filepath.Join(dir, setupCache)
		*tried = append(*tried, p)
		if isFile(p) == nil {
			return p, true
		}
		if isFile(filepath.Join(dir, "go.mod")) == nil {
			return "", false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isFile(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return &fs.PathError{Op: "open", Path: p, Err: errors.New("is a directory")}
	}
	return nil
}
