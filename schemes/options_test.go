package schemes

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCheckVariant(t *testing.T) {
	s, err := Lookup("dapo")
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"", "dapo", "dapo/e1"} {
		if err := s.CheckVariant(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	if err := s.CheckVariant("dapo/e9"); !errors.Is(err, ErrOption) {
		t.Errorf("unknown variant: %v", err)
	}
}

func TestParseWords(t *testing.T) {
	if w, err := ParseWords(" scratch, dent "); err != nil || !slices.Equal(w, []string{"scratch", "dent"}) {
		t.Errorf("%q %v", w, err)
	}
	for _, bad := range []string{",,,", "a,,b", "a,", " "} {
		if _, err := ParseWords(bad); !errors.Is(err, ErrOption) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestWriteVariants(t *testing.T) {
	s, err := Lookup("dapo")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := s.WriteVariants(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(s.Variants()) {
		t.Fatalf("%d lines for %d variants:\n%s", len(lines), len(s.Variants()), b.String())
	}
	for i, v := range s.Variants() {
		if !strings.HasPrefix(lines[i], v.Name+" ") || !strings.HasSuffix(lines[i], v.Doc) {
			t.Errorf("line %q, want %s and its doc", lines[i], v.Name)
		}
	}
}
