package mapfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestMap(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	want := bytes.Repeat([]byte("weights"), 5000)
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, populate := range []bool{false, true} {
		b, unmap, err := Map(p, populate)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("populate %v: mapped bytes differ from the file", populate)
		}
		unmap()
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	if _, _, err := Map(empty, false); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty file: %v", err)
	}
	if _, _, err := Map(dir, false); err == nil {
		t.Error("a directory was mapped")
	}
	if _, _, err := Map(filepath.Join(dir, "missing"), false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestRelease drops the pages of part of a mapping: the bytes read the
// same afterwards (from the file again).
func TestRelease(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	want := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 3*os.Getpagesize())
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	b, unmap, err := Map(p, true)
	if err != nil {
		t.Fatal(err)
	}
	defer unmap()
	Release(b[100 : len(b)-100])
	Release(b[:0])
	Release(b[5:9]) // inside one page: nothing to release
	if !bytes.Equal(b, want) {
		t.Error("released pages read differently")
	}
}
