package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// citation matches docs/<file>.md, optionally followed by #<anchor>, as code
// comments, error messages and scripts cite the documents: "docs/" must
// start a path (possibly after "../"), so that URLs into other projects'
// docs folders (…/blob/main/docs/IR.md) are not taken for citations.
var citation = regexp.MustCompile(`(?:^|[^A-Za-z0-9_./-])(?:\.\./)*docs/([A-Za-z0-9_.-]+\.md)(?:#([A-Za-z0-9_-]+))?`)

// explicitID matches the explicit anchors the documents use.
var explicitID = regexp.MustCompile(`<a id="([^"]+)"></a>`)

// mdLink matches the target of an inline Markdown link or image.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// anchorName is the naming rule of explicit anchors: lower case, digits and
// single hyphens.
var anchorName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// generated matches the line that marks a generated Go file; such files cite
// their generators' documents, not these.
var generated = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

// isGenerated reports whether Go source b is generated: the marker line
// appears before the package clause.
func isGenerated(b []byte) bool {
	head, _, _ := bytes.Cut(append([]byte{'\n'}, b...), []byte("\npackage "))
	return generated.Match(head)
}

// citingExt are the kinds of file whose citations are checked.
var citingExt = []string{".go", ".py", ".sh", ".md"}

// doc is one parsed document.
type doc struct {
	ids   []string        // explicit anchors in order, duplicates kept
	slugs map[string]bool // GitHub heading slugs
	links []link          // relative link targets
}

type link struct {
	line   int
	target string
}

// moduleRoot is the directory holding the module's go.mod: the parent of
// this package's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

// loadDocs parses every .md file of this directory.
func loadDocs(t *testing.T) map[string]*doc {
	t.Helper()
	names, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no .md files in docs/")
	}
	docs := map[string]*doc{}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		docs[name] = parseDoc(b)
	}
	return docs
}

// parseDoc collects the anchors, heading slugs and relative links of a
// Markdown document. Indented and fenced code blocks are not headings.
func parseDoc(b []byte) *doc {
	d := &doc{slugs: map[string]bool{}}
	seen := map[string]int{}
	fenced := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced || strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t") {
			continue
		}
		for _, m := range explicitID.FindAllStringSubmatch(line, -1) {
			d.ids = append(d.ids, m[1])
		}
		if h, ok := strings.CutPrefix(line, "#"); ok {
			h = strings.TrimLeft(h, "#")
			if strings.HasPrefix(h, " ") {
				s := slug(h)
				if k := seen[s]; k > 0 {
					d.slugs[fmt.Sprintf("%s-%d", s, k)] = true
				} else {
					d.slugs[s] = true
				}
				seen[s]++
			}
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			d.links = append(d.links, link{n, target})
		}
	}
	return d
}

// slug is GitHub's heading anchor: lower case, spaces to hyphens, and every
// character that is not a letter, digit, hyphen or underscore dropped.
func slug(heading string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			sb.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// has reports whether anchor names a place in d.
func (d *doc) has(anchor string) bool {
	return slices.Contains(d.ids, anchor) || d.slugs[anchor]
}

// TestCitedAnchorsExist checks every docs/<file>.md#<anchor> cited in the
// module's Go, Python, shell and Markdown files and Makefiles: the file must
// exist here and hold the anchor. The package comment in doc.go cites one
// anchor, so a walk that silently reads nothing fails too.
func TestCitedAnchorsExist(t *testing.T) {
	root := moduleRoot(t)
	docs := loadDocs(t)
	cited, sawDocGo := 0, false
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p == root {
				return nil
			}
			name := e.Name()
			if strings.HasPrefix(name, ".") || name == "vendor" || name == "node_modules" {
				return fs.SkipDir
			}
			// Directories with their own go.mod are other modules.
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return fs.SkipDir
			}
			return nil
		}
		if !slices.Contains(citingExt, filepath.Ext(p)) && e.Name() != "Makefile" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if filepath.Ext(p) == ".go" && isGenerated(b) {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range citation.FindAllStringSubmatch(line, -1) {
				cited++
				if rel == filepath.Join("docs", "doc.go") {
					sawDocGo = true
				}
				file, anchor := m[1], m[2]
				d, ok := docs[file]
				switch {
				case !ok:
					t.Errorf("%s:%d: cites docs/%s, which does not exist", rel, i+1, file)
				case anchor != "" && !d.has(anchor):
					t.Errorf("%s:%d: cites docs/%s#%s, which has no such anchor", rel, i+1, file, anchor)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawDocGo {
		t.Error("the walk did not find the citation in docs/doc.go")
	}
	t.Logf("%d citations of docs/ checked", cited)
}

// TestDocLinks checks every relative link of the documents: the target file
// exists (relative to docs/) and, for links into a document, the anchor does.
func TestDocLinks(t *testing.T) {
	docs := loadDocs(t)
	for name, d := range docs {
		for _, l := range d.links {
			file, anchor, _ := strings.Cut(l.target, "#")
			target := d
			if file != "" {
				if strings.HasSuffix(file, ".md") && !strings.Contains(file, "/") {
					var ok bool
					if target, ok = docs[file]; !ok {
						t.Errorf("%s:%d: link to %s: no such document", name, l.line, l.target)
						continue
					}
				} else {
					if _, err := os.Stat(filepath.FromSlash(file)); err != nil {
						t.Errorf("%s:%d: link to %s: %v", name, l.line, l.target, err)
					}
					continue
				}
			}
			if anchor != "" && !target.has(anchor) {
				t.Errorf("%s:%d: link to %s: no such anchor", name, l.line, l.target)
			}
		}
	}
}

// TestAnchorNames checks that explicit anchors are unique within their
// document and follow the naming rule (lower case, hyphenated), so that a
// citation can only mean one place.
func TestAnchorNames(t *testing.T) {
	docs := loadDocs(t)
	total := 0
	for name, d := range docs {
		seen := map[string]bool{}
		for _, id := range d.ids {
			total++
			if seen[id] {
				t.Errorf("%s: anchor %q defined twice", name, id)
			}
			seen[id] = true
			if !anchorName.MatchString(id) {
				t.Errorf("%s: anchor %q is not lower-case and hyphenated", name, id)
			}
		}
	}
	if total == 0 {
		t.Error("the documents define no explicit anchors")
	}
}

// TestSlug pins the GitHub heading-slug rule the link checks rely on.
func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		" Upstream sources":                "upstream-sources",
		" 1. CLIP backbones, tokenizer":    "1-clip-backbones-tokenizer",
		" Deep text prompts: insert, 0.01": "deep-text-prompts-insert-001",
		" The `meta.json` format (DAPO's)": "the-metajson-format-dapos",
		" Pixel metrics pool the category": "pixel-metrics-pool-the-category",
		" AU-PRO — two variants":           "au-pro--two-variants",
		" snake_case stays":                "snake_case-stays",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestParseDoc checks anchor, slug and link extraction on a small document,
// including the cases that must not count: headings in code blocks.
func TestParseDoc(t *testing.T) {
	d := parseDoc([]byte(strings.Join([]string{
		`<a id="x-one"></a>`,
		`## Same`,
		`## Same`,
		"```",
		`# not a heading`,
		"```",
		`    # not a heading either`,
		`See [a](#x-one), [b](other.md#y) and [c](https://example.com/#z).`,
	}, "\n")))
	if !slices.Equal(d.ids, []string{"x-one"}) {
		t.Errorf("ids %v, want [x-one]", d.ids)
	}
	for _, s := range []string{"same", "same-1"} {
		if !d.slugs[s] {
			t.Errorf("slug %q missing from %v", s, d.slugs)
		}
	}
	if d.slugs["not-a-heading"] || d.slugs["not-a-heading-either"] {
		t.Errorf("headings inside code blocks were taken: %v", d.slugs)
	}
	want := []link{{8, "#x-one"}, {8, "other.md#y"}}
	if !slices.Equal(d.links, want) {
		t.Errorf("links %v, want %v", d.links, want)
	}
}

// TestIsGenerated checks the generated-file rule on both sides of the
// package clause.
func TestIsGenerated(t *testing.T) {
	for src, want := range map[string]bool{
		"// Code generated by protoc-gen-go. DO NOT EDIT.\n\npackage x\n": true,
		"// Package x does things.\npackage x\n":                          false,
		"package x\n\n// Code generated by hand. DO NOT EDIT.\n":          false,
	} {
		if got := isGenerated([]byte(src)); got != want {
			t.Errorf("isGenerated(%q) = %v, want %v", src, got, want)
		}
	}
}

// staleCitation matches the ways code can cite what is not in the
// repository, or a ticket of this project: a bare "method.md",
// "datasets.md" or "metrics.md" (the shared reference's names, which the
// documents here do not use), one of this repository's documents under
// docs/ without an anchor, a "§" section number, the shared reference
// folder ("../shared", "shared/reference", "reference/<name>.md"),
// "go-ecosystem.md", "DESIGN.md", "issue 4", "issue #82" or "the issue".
// URLs are removed from a line before it is matched (see urlPattern), so an
// upstream issue cited by its full URL passes.
var staleCitation = regexp.MustCompile(`(?:^|[^A-Za-z0-9_/#.-])(?:method|datasets|metrics)\.md\b` +
	`|(?:^|[^A-Za-z0-9_./-])(?:\.\./)*docs/(?:methods|data|evaluation)\.md(?:[^#A-Za-z0-9_]|$)` +
	`|§\s*\d|(?:\.\./|/work/)shared\b|shared/reference|\breference/[A-Za-z0-9_-]+\.md\b` +
	`|go-ecosystem\.md|DESIGN\.md|(?i:\bissue\s+#?\d+|\bthe issue\b)`)

// urlPattern matches a URL, removed from a line before staleCitation is
// applied: upstream code and issues are cited by URL, and a URL's path may
// contain another project's document or "issues/82".
var urlPattern = regexp.MustCompile(`https?://[^\s)\]>"'` + "`" + `]+`)

// scannedExt are the kinds of file TestNoExternalCitations reads, besides
// Makefiles: code, scripts, and JSON (settings written to results.json and
// data files that carry a source note).
var scannedExt = []string{".go", ".py", ".sh", ".json"}

// staleIn returns what line cites that it should not, or "".
func staleIn(line string) string {
	return strings.TrimSpace(staleCitation.FindString(urlPattern.ReplaceAllString(line, "")))
}

// TestNoExternalCitations checks that no Go, Python, shell or JSON file or
// Makefile outside this directory cites a document outside the repository
// or a ticket: reasons are cited as docs/<file>.md#<anchor> or as upstream
// URLs pinned to a commit. The documents and their tests (this directory)
// are not scanned. Generated Go files are skipped; counting the files read
// makes sure the walk saw the tree.
func TestNoExternalCitations(t *testing.T) {
	root := moduleRoot(t)
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	scanned := map[string]int{}
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p == root {
				return nil
			}
			name := e.Name()
			if p == here || strings.HasPrefix(name, ".") || name == "vendor" || name == "node_modules" {
				return fs.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return fs.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(p)
		if !slices.Contains(scannedExt, ext) && e.Name() != "Makefile" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if ext == ".go" && isGenerated(b) {
			return nil
		}
		scanned[ext]++
		rel, _ := filepath.Rel(root, p)
		for i, line := range strings.Split(string(b), "\n") {
			if m := staleIn(line); m != "" {
				t.Errorf("%s:%d: cites %q; cite docs/<file>.md#<anchor> or a pinned upstream URL instead", rel, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".go", ".py", ".json"} {
		if scanned[ext] == 0 {
			t.Errorf("the walk read no %s files", ext)
		}
	}
	t.Logf("files scanned: %v", scanned)
}

// TestStaleCitation pins what staleIn flags and what it lets through.
func TestStaleCitation(t *testing.T) {
	for line, want := range map[string]bool{
		"// map smoothed with σ = 4; method.md §6.2).":                      true,
		"// (reference/method.md §2.7, §6.2) without":                       true,
		`"""Reference values (reference/datasets.md).`:                      true,
		"// ../shared/reference/metrics.md (\"Implications\").":             true,
		"// in metrics.md section 3.2":                                      true,
		"// see docs/methods.md for the details":                            true,
		"// (DESIGN.md, issue 5 item 6).":                                   true,
		"// ViT-L's image tower comes close (issue 4).":                     true,
		"// released checkpoints and logs do: issue #82).":                  true,
		"// released checkpoints and logs do: Issue #82).":                  true,
		"// parityTol is the issue's bound for fp32 graphs.":                true,
		"// go-ecosystem.md saw max 23":                                     true,
		`m["words"] = "dataset vocabulary (method.md §3.1)"`:                true,
		"// (https://github.com/zqhang/AnomalyCLIP/issues/82) §6.2":         true,
		"// map smoothed with σ = 4; docs/methods.md#anomalyclip-scoring":   false,
		"// (docs/evaluation.md#aupro-cflow200, docs/data.md#mvtec-layout)": false,
		"// https://github.com/zqhang/AnomalyCLIP/issues/82":                false,
		"// https://github.com/onnx/onnx/blob/main/docs/IR.md":              false,
		"It writes metrics/testdata/reference/: the inputs":                 false,
		"// docs/README.md#feature-cache":                                   false,
		"// this fixes a tissue 4 times":                                    false,
	} {
		if got := staleIn(line) != ""; got != want {
			t.Errorf("staleIn(%q) = %q, flagged %v, want %v", line, staleIn(line), got, want)
		}
	}
}
