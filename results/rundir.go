package results

import (
	"encoding/csv"
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
// categories/<name>.json as soon as the category is done, so that an
// interrupted run resumes from the completed categories.
type CategoryRecord struct {
	Category    string `json:"category"`
	Fingerprint string `json:"fingerprint"`
	NNormal     int    `json:"n_normal"`
	NAnomalous  int    `json:"n_anomalous"`
	Image       Binary `json:"image"`
	Pixel       Binary `json:"pixel"`
	AUPRO       Metric `json:"pixel_aupro"`
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
