package checkpoints

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// problems collects what is wrong with a set of tensors, so that one
// error reports all of it. Per-layer tensors with the same problem are
// reported once ("learnable_layer_tokens.{0..11} have shape [4 32], want
// [4 768]"), so that a checkpoint for another model reads as a few lines.
type problems struct {
	list []problem
}

// The kinds of problem, in the order they are reported: a missing state
// dict or an unknown tensor usually means the wrong scheme or file, a
// wrong shape the wrong model.
const (
	noStateDict = iota
	unknownTensor
	wrongShape
	wrongLength
	missingTensor
)

type problem struct {
	kind      int
	key       string
	got, want []int
	text      string // noStateDict's message; wrongLength's value count
}

func (p *problems) add(q problem) { p.list = append(p.list, q) }

// maxShown bounds the grouped problems one error lists.
const maxShown = 8

// err joins the problems into one ErrMismatch error, or returns nil.
func (p *problems) err(d Dims) error {
	if len(p.list) == 0 {
		return nil
	}
	type group struct {
		problem
		template string
		index    []int
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, q := range p.list {
		tmpl, i := indexed(q.key)
		gk := fmt.Sprint(q.kind, tmpl, q.got, q.want, q.text)
		if i < 0 || q.kind == noStateDict {
			gk = fmt.Sprint(q.kind, q.key, q.text)
		}
		g, ok := byKey[gk]
		if !ok {
			g = &group{problem: q, template: tmpl}
			byKey[gk] = g
			groups = append(groups, g)
		}
		if i >= 0 {
			g.index = append(g.index, i)
		}
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return a.kind - b.kind })
	var msgs []string
	for _, g := range groups {
		key, verb := g.key, "has"
		if len(g.index) > 1 {
			key, verb = strings.Replace(g.template, "{i}", "{"+ranges(g.index)+"}", 1), "have"
		}
		switch g.kind {
		case noStateDict:
			msgs = append(msgs, g.text)
		case unknownTensor:
			msgs = append(msgs, fmt.Sprintf("unknown tensor %s %v", key, g.got))
		case missingTensor:
			msgs = append(msgs, fmt.Sprintf("missing %s (want shape %v)", key, g.want))
		case wrongShape:
			msgs = append(msgs, fmt.Sprintf("%s %s shape %v, want %v", key, verb, g.got, g.want))
		case wrongLength:
			msgs = append(msgs, fmt.Sprintf("%s %s %s values for shape %v", key, verb, g.text, g.got))
		}
	}
	more := ""
	if len(msgs) > maxShown {
		more = fmt.Sprintf("; and %d more", len(msgs)-maxShown)
		msgs = msgs[:maxShown]
	}
	return fmt.Errorf("%s %w %s: %s%s", d.Scheme, ErrMismatch, d.Origin, strings.Join(msgs, "; "), more)
}

// indexed replaces the first all-digit segment of a dotted key with
// "{i}" and returns its value, or -1 when there is none.
func indexed(key string) (string, int) {
	parts := strings.Split(key, ".")
	for j, s := range parts {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && strconv.Itoa(n) == s {
			parts[j] = "{i}"
			return strings.Join(parts, "."), n
		}
	}
	return key, -1
}

// ranges formats sorted-or-not indices compactly: "0..3,7".
func ranges(idx []int) string {
	idx = slices.Clone(idx)
	slices.Sort(idx)
	var parts []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d..%d", idx[i], idx[j]))
		} else {
			parts = append(parts, strconv.Itoa(idx[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
