package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/internal/parallel"
	"github.com/dapobench/dapobench/internal/version"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/results"
)

// ErrOutConflict marks a run directory that holds the results of another
// configuration: the run is refused rather than overwrite or mix them
// (docs/README.md#rundir-resume). It is a usage error: choose another
// output folder.
var ErrOutConflict = errors.New("run directory holds another configuration")

// versionString is the dapobench version recorded in every category's
// inputs; a variable so that tests can play an older build.
var versionString = version.String

// runConfig is the configuration of a run: everything that changes its
// numbers and is the same for every category. A run directory holds one
// configuration; the category selection is not part of it (running more
// categories into a directory adds to it).
func runConfig(cfg Config) (map[string]string, error) {
	c := map[string]string{
		"dataset":    cfg.Dataset,
		"scheme":     cfg.Scheme.Name(),
		"aupro":      string(cfg.AUPRO),
		"model":      cfg.Model.Hash,
		"prompts":    "none",
		"protocol":   cfg.Loader.Protocol,
		"resolution": cfg.Loader.Resolution,
		"views":      strings.Join(cfg.Loader.Views, ","),
		"meta":       "none",
	}
	for _, f := range []struct{ key, path string }{{"prompts", cfg.PromptsFile}, {"meta", cfg.Loader.Meta}} {
		if f.path == "" {
			continue
		}
		p := f.path
		if f.key == "meta" && !filepath.IsAbs(p) {
			if _, err := os.Stat(p); err != nil {
				p = filepath.Join(cfg.Loader.Root, p) // as the loader resolves it
			}
		}
		h, err := featcache.HashFile(p)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		c[f.key] = "sha256 " + h
	}
	for k, v := range cfg.Scheme.Settings() {
		c["setting "+k] = v
	}
	return c, nil
}

// contentHashes are the sha256 of each sample's image and mask files.
type contentHashes struct {
	images, masks []string
}

// hashContent reads every image and mask of a category once: their
// digests go into the category's inputs, and the image digests are the
// feature-cache keys, so a resumed category costs one read of its files.
func hashContent(ctx context.Context, samples []loaders.Sample) (contentHashes, error) {
	h := contentHashes{images: make([]string, len(samples)), masks: make([]string, len(samples))}
	err := parallel.For(ctx, len(samples), 4*runtime.GOMAXPROCS(0), func(_ context.Context, i int) error {
		var err error
		if h.images[i], err = featcache.HashFile(samples[i].ImagePath); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if samples[i].MaskPath != "" {
			if h.masks[i], err = featcache.HashFile(samples[i].MaskPath); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
		}
		return nil
	})
	return h, err
}

// categoryInputs digests what a category's numbers depend on besides the
// run configuration: the dapobench build, the sample list (paths, labels,
// defect types) and the content of every image and mask.
func categoryInputs(samples []loaders.Sample, h contentHashes) map[string]string {
	list, images, masks := sha256.New(), sha256.New(), sha256.New()
	for i, s := range samples {
		fmt.Fprintf(list, "%s\x00%s\x00%d\x00%s\n", s.RelImage, s.RelMask, s.Label, s.DefectType)
		fmt.Fprintf(images, "%s %s\n", s.RelImage, h.images[i])
		fmt.Fprintf(masks, "%s %s\n", s.RelMask, h.masks[i])
	}
	return map[string]string{
		"dapobench": versionString(),
		"samples":   hex.EncodeToString(list.Sum(nil)),
		"images":    hex.EncodeToString(images.Sum(nil)),
		"masks":     hex.EncodeToString(masks.Sum(nil)),
	}
}

// fingerprint identifies everything a category's numbers depend on, so
// that resuming never mixes results of different settings or inputs.
func fingerprint(category string, config, inputs map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "category %s\n", category)
	for _, m := range []map[string]string{config, inputs} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%s=%s\n", k, m[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// differences names the keys whose values differ between a and b, with
// both values, in key order.
func differences(a, b map[string]string) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if a[k] != b[k] {
			out = append(out, fmt.Sprintf("%s: %s, this run %s", k, show(a[k]), show(b[k])))
		}
	}
	sort.Strings(out)
	return out
}

func show(v string) string {
	if v == "" {
		return `""`
	}
	if len(v) > 64+7 {
		return v[:40] + "…"
	}
	return strconv.Quote(v)
}

// checkOut refuses a run directory whose category records were computed
// under another configuration, naming every difference, before anything in
// it is touched. Records that do not state their configuration (written by
// an older dapobench) are refused too: their configuration is unknown.
func checkOut(out string, config map[string]string) error {
	dir := filepath.Join(out, results.CategoriesDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		var r results.CategoryRecord
		if json.Unmarshal(b, &r) != nil {
			continue // a damaged record is recomputed, not a configuration
		}
		if r.Config == nil {
			return fmt.Errorf("bench: %w: %s holds records of an older dapobench that do not state their configuration (%s); choose another output folder or remove it",
				ErrOutConflict, out, p)
		}
		if d := differences(r.Config, config); len(d) > 0 {
			return fmt.Errorf("bench: %w: %s holds the results of another configuration (%s):\n  %s\nchoose another output folder (the default one names every setting)",
				ErrOutConflict, out, p, strings.Join(d, "\n  "))
		}
	}
	return nil
}

// positionInput is the input key of a category's place in the run: the
// run-order index of its first sample, recorded only for schemes whose
// scores depend on it (PositionScorer).
const positionInput = "position"

// reuse reads a category's record and says whether it can stand for the
// category as a fresh run would compute it: the fingerprint of the
// configuration and inputs (with the category's place in the run, first,
// when its scores depend on it), and every file the category wrote still
// there. When it cannot, why says so ("" also when there is no record).
func reuse(cfg Config, recPath, category string, config, inputs map[string]string, first int, samples []loaders.Sample) (r results.CategoryRecord, why string) {
	b, err := os.ReadFile(recPath)
	if errors.Is(err, os.ErrNotExist) {
		return r, ""
	}
	if err != nil {
		return r, err.Error()
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Sprintf("its record is damaged (%v)", err)
	}
	if _, ok := r.Inputs[positionInput]; ok {
		inputs = maps.Clone(inputs)
		inputs[positionInput] = strconv.Itoa(first)
	}
	if d := differences(r.Inputs, inputs); r.Fingerprint != fingerprint(category, config, inputs) || len(d) > 0 {
		if r.Inputs == nil {
			return r, "its record predates input fingerprints"
		}
		if len(d) > 0 {
			var what []string
			for _, k := range []string{"dapobench", "samples", "images", "masks", positionInput} {
				if r.Inputs[k] != inputs[k] {
					what = append(what, map[string]string{
						"dapobench":   fmt.Sprintf("the dapobench version changed (%s → %s)", r.Inputs[k], inputs[k]),
						"samples":     "the sample list changed (files, labels or defect types)",
						"images":      "the content of its images changed",
						"masks":       "the content of its masks changed",
						positionInput: fmt.Sprintf("its place in the run changed (first sample %s → %s), on which the scheme's scores depend", r.Inputs[k], inputs[k]),
					}[k])
				}
			}
			return r, strings.Join(what, "; ")
		}
		return r, "its record has another fingerprint"
	}
	name := results.CategoryFile(r.Category)
	need := []string{filepath.Join(results.ScoresDir, name+".csv"), filepath.Join(results.ExamplesDir, name, results.ExamplesFile)}
	images, _, _, _, err := results.ReadScores(cfg.Out, r.Category)
	if err != nil {
		return r, fmt.Sprintf("its scores cannot be read (%v)", err)
	}
	if len(images) != len(samples) {
		return r, fmt.Sprintf("its scores list %d images, not %d", len(images), len(samples))
	}
	var ex []results.Example
	if b, err := os.ReadFile(filepath.Join(cfg.Out, need[1])); err != nil || json.Unmarshal(b, &ex) != nil {
		return r, fmt.Sprintf("%s is missing or damaged", need[1])
	}
	for _, e := range ex {
		need = append(need, filepath.FromSlash(e.Map))
	}
	if cfg.SaveMaps {
		for _, s := range samples {
			stem := strings.TrimSuffix(s.RelImage, path.Ext(s.RelImage))
			need = append(need, filepath.Join(results.MapsDir, filepath.FromSlash(stem+".npy")))
			if r.MultiType != nil {
				need = append(need, filepath.Join(results.MapsDir, filepath.FromSlash(stem+results.ClassMapsExt)))
			}
		}
		if r.MultiType != nil {
			need = append(need, filepath.Join(results.MapsDir, results.ClassIndexDir, name+".json"))
		}
	}
	for _, p := range need {
		if _, err := os.Stat(filepath.Join(cfg.Out, p)); err != nil {
			return r, fmt.Sprintf("%s is missing", filepath.ToSlash(p))
		}
	}
	return r, ""
}

// clearFinish removes results.json and manifest.json, which only a
// finished run writes (results.json last): from now until Finish, the
// directory reads as the incomplete run it is.
func clearFinish(out string) error {
	for _, f := range []string{results.FileName, results.ManifestName} {
		if err := os.Remove(filepath.Join(out, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}

// OutName is what the default run directory is named after.
type OutName struct {
	Dataset string
	Scheme  string // the scheme or variant, as --variant names it
	Model   string // the model directory
	Prompts string // learned prompts file; "" when untrained
	Seed    uint64 // seed of untrained prompts
	Words   []string
	AUPRO   string
	Loader  loaders.Options
}

// DefaultOut is the run directory runs/<name> where the name carries every
// setting that changes the results: the dataset and the scheme or variant,
// then only what differs from the defaults — the model folder when it is
// not named after the scheme, the prompts file (name and the start of its
// sha256), the seed of untrained prompts, the defect words (a digest), the
// AU-PRO variant, the split protocol, resolution, views, meta.json and
// category. Two runs that differ in any of them never share a directory
// by default (docs/README.md#rundir-default-out).
func DefaultOut(n OutName) (string, error) {
	parts := []string{n.Dataset, strings.ReplaceAll(n.Scheme, "/", "-")}
	family, _, _ := strings.Cut(n.Scheme, "/")
	if m := filepath.Base(filepath.Clean(n.Model)); n.Model != "" && m != family {
		parts = append(parts, "model-"+m)
	}
	if n.Prompts != "" {
		h, err := featcache.HashFile(n.Prompts)
		if err != nil {
			return "", fmt.Errorf("bench: %w", err)
		}
		parts = append(parts, "prompts-"+strings.TrimSuffix(filepath.Base(n.Prompts), filepath.Ext(n.Prompts))+"-"+h[:8])
	} else if n.Seed != 1 {
		parts = append(parts, "seed"+strconv.FormatUint(n.Seed, 10))
	}
	if n.Words != nil {
		h := sha256.Sum256([]byte(strings.Join(n.Words, "\x00")))
		parts = append(parts, "words-"+hex.EncodeToString(h[:4]))
	}
	if n.AUPRO != "" && n.AUPRO != "cflow200" {
		parts = append(parts, "aupro-"+n.AUPRO)
	}
	o := n.Loader
	for _, p := range []string{o.Protocol, o.Resolution, strings.Join(o.Views, "+")} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if o.Meta != "" {
		parts = append(parts, "meta-"+strings.TrimSuffix(filepath.Base(o.Meta), filepath.Ext(o.Meta)))
	}
	if o.Category != "" {
		parts = append(parts, o.Category)
	}
	name := strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), "-")
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == ' ' {
			return '_'
		}
		return r
	}, name)
	return filepath.Join("runs", name), nil
}
