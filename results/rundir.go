package results

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The files and folders of a run directory.
const (
	FileName      = "results.json"
	ManifestName  = "manifest.json"
	CategoriesDir = "categories" // one CategoryRecord per finished category
	ScoresDir     = "scores"     // per-image scores, one CSV per category
	ExamplesDir   = "examples"   // maps of each category's telling samples
	MapsDir       = "maps"       // every map, with --save-maps
)

// CategoryRecord is the outcome of one category; it is written to
// categories/<name>.json as soon as the category is done (after its scores
// and examples), so that an interrupted run resumes from the completed
// categories.
type CategoryRecord struct {
	Category    string `json:"category"`
	Fingerprint string `json:"fingerprint"`
	// Config is the run configuration the record was computed under
	// (dataset, scheme, settings, model and prompts hashes, …); a run into
	// a directory whose records hold another configuration is refused.
	Config map[string]string `json:"config,omitempty"`
	// Inputs digest what else the numbers depend on: the dapobench
	// version and the sample list with the content of every image and
	// mask. A record whose inputs differ is recomputed, saying which.
	Inputs     map[string]string `json:"inputs,omitempty"`
	NNormal    int               `json:"n_normal"`
	NAnomalous int               `json:"n_anomalous"`
	Image      Binary            `json:"image"`
	Pixel      Binary            `json:"pixel"`
	AUPRO      Metric            `json:"pixel_aupro"`
	// MultiType holds the per-class pixel metrics, when the scheme has a
	// multi-type output.
	MultiType *MultiType `json:"multi_type,omitempty"`
	// Seconds is the wall time of the category (not in results.json).
	Seconds float64 `json:"seconds"`
	// Computed and Cached count where image features came from.
	Computed int `json:"computed"`
	Cached   int `json:"cached"`
}

// Metric is a metric value or null with a reason.
type Metric struct {
	Value  *float64 `json:"value"`
	Reason string   `json:"reason,omitempty"`
}

// Binary are the threshold-free metrics of one score set.
type Binary struct {
	AUROC Metric `json:"auroc"`
	AP    Metric `json:"ap"`
	F1Max Metric `json:"f1max"`
}

// MultiType is the multi-type segmentation of one category.
type MultiType struct {
	Classes    []ClassMetrics `json:"classes"`
	MacroAUROC Metric         `json:"macro_auroc"`
	MacroAP    Metric         `json:"macro_ap"`
	MacroF1    Metric         `json:"macro_f1"`
	// TypeAccuracy is the image-level defect-type accuracy (argmax over the
	// category's defect types, anomalous images only).
	TypeAccuracy Metric     `json:"type_accuracy"`
	Confusion    [][]uint64 `json:"confusion"`
	// Excluded counts anomalous images left out because their defect type
	// has no class in the category's list (or several defects).
	Excluded int `json:"excluded"`
}

// ClassMetrics are the one-vs-rest pixel metrics of one class.
type ClassMetrics struct {
	Class  string `json:"class"`
	Pixels uint64 `json:"pixels"`
	AUROC  Metric `json:"auroc"`
	AP     Metric `json:"ap"`
	F1     Metric `json:"f1"`
}

// ManifestSchema identifies the manifest.json format.
const ManifestSchema = "dapobench/run-manifest/v1"

// ErrIncomplete marks a run directory that is missing part of what a
// finished run writes: an interrupted run, or one whose last writes failed
// (a full disk). Readers refuse it rather than report half a run.
var ErrIncomplete = errors.New("incomplete run directory")

// CheckComplete reports whether the run directory dir holds everything a
// finished run writes. A run writes its categories' scores, examples and
// records as each category finishes, then manifest.json, then results.json
// last (bench.Finish), and removes both when it starts; so a complete
// directory has results.json, a manifest of the same categories, and for
// each category a record whose fingerprint the manifest lists, its scores
// and its examples (docs/README.md#rundir-complete). The error matches
// ErrIncomplete and says what is missing.
func CheckComplete(dir string) error {
	incomplete := func(format string, args ...any) error {
		return fmt.Errorf("results: %s: %w: "+format, append([]any{dir, ErrIncomplete}, args...)...)
	}
	res, err := Read(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return incomplete("no %s (the run did not finish, or this is not a run directory)", FileName)
	}
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return incomplete("%s: %v (the run stopped while finishing)", ManifestName, err)
	}
	var man struct {
		Schema     string `json:"schema"`
		Categories []struct {
			Category    string `json:"category"`
			Fingerprint string `json:"fingerprint"`
		} `json:"categories"`
	}
	if err := json.Unmarshal(b, &man); err != nil || man.Schema != ManifestSchema {
		return incomplete("%s is not a %s manifest (%v)", ManifestName, ManifestSchema, err)
	}
	listed := map[string]string{}
	for _, c := range man.Categories {
		listed[c.Category] = c.Fingerprint
	}
	for name := range res.Categories {
		if _, ok := listed[name]; !ok {
			return incomplete("%s has category %q, %s does not list it", FileName, name, ManifestName)
		}
	}
	for _, c := range man.Categories {
		if res.Categories[c.Category] == nil {
			return incomplete("%s lists category %q, %s has none", ManifestName, c.Category, FileName)
		}
		f := CategoryFile(c.Category)
		rec := filepath.Join(CategoriesDir, f+".json")
		b, err := os.ReadFile(filepath.Join(dir, rec))
		if err != nil {
			return incomplete("%s: %v", rec, err)
		}
		var r CategoryRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return incomplete("%s: %v", rec, err)
		}
		if r.Category != c.Category || r.Fingerprint != c.Fingerprint {
			return incomplete("%s is the record of another computation (%s %s) than %s lists (%s %s)",
				rec, r.Category, r.Fingerprint, ManifestName, c.Category, c.Fingerprint)
		}
		for _, part := range []string{filepath.Join(ScoresDir, f+".csv"), filepath.Join(ExamplesDir, f, ExamplesFile)} {
			if _, err := os.Stat(filepath.Join(dir, part)); err != nil {
				return incomplete("category %q: %v", c.Category, err)
			}
		}
	}
	return nil
}

// ExamplesFile is the index of a category's examples, under
// examples/<category>/.
const ExamplesFile = "examples.json"

// CategoryFile is the file name of a category's records (categories/,
// scores/, examples/): the name with path separators and NUL as "_".
func CategoryFile(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, s)
}

// Example kinds: the anomalous image the scheme finds most anomalous, the
// one it finds least anomalous (its worst miss), and the normal image it
// finds most anomalous (its worst false alarm). Reports draw their maps.
const (
	TopAnomalous    = "top-anomalous"
	BottomAnomalous = "bottom-anomalous"
	TopNormal       = "top-normal"
)

// Example is one kept sample with its anomaly map, as examples.json lists
// it; the map is examples/<category>/<kind>.npy.
type Example struct {
	Kind       string  `json:"kind"`
	Image      string  `json:"image"` // absolute path
	Mask       string  `json:"mask,omitempty"`
	RelImage   string  `json:"rel_image"`
	DefectType string  `json:"defect_type,omitempty"`
	Score      float32 `json:"score"`
	Map        string  `json:"map"` // run-relative path of the .npy map
	Size       int     `json:"size"`
}

// ScoresHeader is the header of scores/<category>.csv.
var ScoresHeader = []string{"image", "label", "defect_type", "score"}

// ReadScores reads scores/<category>.csv of a run.
func ReadScores(run, category string) (images []string, labels []bool, defects []string, scores []float64, err error) {
	p := filepath.Join(run, ScoresDir, CategoryFile(category)+".csv")
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("results: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = len(ScoresHeader)
	rows, err := r.ReadAll()
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("results: %s: %w", p, err)
	}
	if len(rows) == 0 || fmt.Sprint(rows[0]) != fmt.Sprint(ScoresHeader) {
		return nil, nil, nil, nil, fmt.Errorf("results: %s: header is not %v", p, ScoresHeader)
	}
	for i, row := range rows[1:] {
		v, err := strconv.ParseFloat(row[3], 64)
		if err != nil || (row[1] != "0" && row[1] != "1") {
			return nil, nil, nil, nil, fmt.Errorf("results: %s:%d: bad row %q", p, i+2, row)
		}
		images = append(images, row[0])
		labels = append(labels, row[1] == "1")
		defects = append(defects, row[2])
		scores = append(scores, v)
	}
	return images, labels, defects, scores, nil
}

// Class maps. With --save-maps, a scheme with multi-type segmentation also
// saves every image's class maps beside its anomaly map, as
// <stem>.classes.npy (float32 [C, H, W], classes in ClassIndex.Classes
// order), and per category an index maps/classes/<category>.json. Together
// they let `dapobench eval` recompute the multi-type metrics of a run.
const (
	ClassMapsExt  = ".classes.npy"
	ClassIndexDir = "classes" // under maps/
)

// ClassIndex describes one category's saved class maps.
type ClassIndex struct {
	Category string `json:"category"`
	// Classes are the multi-type classes, normal first.
	Classes []string `json:"classes"`
	// DefectTypes maps each raw defect type of the category's anomalous
	// images to its class; a type that is absent has no class, and its
	// images are left out of the multi-type metrics.
	DefectTypes map[string]int `json:"defect_types"`
	// Seen lists the classes in the scheme's training vocabulary (absent
	// for schemes without one); the others are novel.
	Seen []string `json:"seen,omitempty"`
	// Vocabulary tells whether the scheme has a training vocabulary.
	Vocabulary bool `json:"vocabulary"`
	// ClassScores are the image-level class scores of each image, by its
	// dataset-relative path.
	ClassScores map[string][]float64 `json:"class_scores"`
}

// ClassIndexFile is the path of a category's class-map index in a maps
// folder.
func ClassIndexFile(maps, category string) string {
	return filepath.Join(maps, ClassIndexDir, CategoryFile(category)+".json")
}
