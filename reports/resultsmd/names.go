package resultsmd

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// slug turns a name into a file-name part that needs no escaping in a
// Markdown link and does not depend on the file system's case rules:
// lower case letters, digits, '.', '_' and '-'.
func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	out := strings.Trim(b.String(), ".-")
	if out == "" {
		out = "x"
	}
	return out
}

// names hands out file names that are unique within one folder, so that
// two categories whose slugs collide ("a b" and "a-b") get two files.
type names map[string]bool

func (n names) unique(s string) string {
	base := slug(s)
	name := base
	for i := 2; n[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	n[name] = true
	return name
}

// link is the Markdown link target of path, relative to the folder of
// RESULTS.md, with '/' separators and every segment escaped. A path that
// has no relative form (another volume) stays absolute.
func link(from, path string) string {
	rel, err := filepath.Rel(from, path)
	if err != nil {
		abs, aerr := filepath.Abs(path)
		if aerr != nil {
			abs = path
		}
		rel = abs
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
