// Package results is the contract between the pipeline that writes a run
// directory and everything that reads one: the results.json schema
// (dapobench/results/v1) with its metric keys, and the per-category records,
// scores and examples a run directory holds beside it. It depends on no
// other part of the pipeline, so writers (bench) and readers (reports,
// study) both import it and never each other.
package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/dapobench/dapobench/internal/atomicfile"
	"github.com/dapobench/dapobench/metrics"
)

// Schema identifies the results.json format this package reads and writes.
const Schema = "dapobench/results/v1"

// Metric names: the keys of an Entry's metrics.
const (
	ImageAUROC = "image_auroc"
	ImageAP    = "image_ap"
	ImageF1Max = "image_f1max"
	PixelAUROC = "pixel_auroc"
	PixelAP    = "pixel_ap"
	PixelF1Max = "pixel_f1max"
	PixelAUPRO = "pixel_aupro" // the variant is in Settings["aupro"]
	PixelF1    = "pixel_f1"    // defect-type rows: F1 of the argmax

	// Multi-type segmentation keys of a category entry.
	TypePixelAUROC = "type_pixel_auroc" // macro one-vs-rest AUROC over the category's classes
	TypePixelAP    = "type_pixel_ap"
	TypePixelF1    = "type_pixel_f1" // macro F1 of the per-pixel argmax
	TypeAccuracy   = "type_accuracy" // image-level argmax over the defect types
)

// Count names: the integer keys of an Entry. Every count key starts with
// "n_", which is how the JSON tells counts from metrics.
const (
	NNormal     = "n_normal"
	NAnomalous  = "n_anomalous"
	NCategories = "n_categories"
	NExcluded   = "n_type_excluded" // anomalous images without a class in the category's list
)

// StandardMetrics returns the seven metrics of a binary evaluation in table
// order.
func StandardMetrics() []string {
	return []string{ImageAUROC, ImageAP, ImageF1Max, PixelAUROC, PixelAP, PixelF1Max, PixelAUPRO}
}

// Results is one results.json: the metrics of one scheme and model on one
// dataset, per category, their mean, and optionally per defect type.
type Results struct {
	Schema   string            `json:"schema"`
	Dataset  string            `json:"dataset"`
	Scheme   string            `json:"scheme"`
	Model    string            `json:"model"`
	Settings map[string]string `json:"settings"`
	// Categories are keyed by the dataset's category folder name.
	Categories map[string]*Entry `json:"categories"`
	// Mean is the unweighted mean over categories (see ComputeMean).
	Mean        *Entry            `json:"mean"`
	DefectTypes map[string]*Entry `json:"defect_types,omitempty"`
}

// Entry is one row of results: metric values, counts, and for each metric
// that is undefined the reason. In JSON it is one flat object:
//
//	{"image_auroc": 0.98, "pixel_aupro": null, "n_normal": 20,
//	 "undefined": {"pixel_aupro": "no defect regions in the ground truth"}}
type Entry struct {
	// Metrics maps a metric name to its value, a fraction in [0, 1] for
	// the standard metrics; nil means undefined (see Undefined).
	Metrics   map[string]*float64
	Counts    map[string]int
	Undefined map[string]string // metric → why it is null
	Notes     map[string]string // metric → how it was computed, if unusual
}

// NewEntry returns an empty Entry.
func NewEntry() *Entry {
	return &Entry{Metrics: map[string]*float64{}, Counts: map[string]int{}, Undefined: map[string]string{}, Notes: map[string]string{}}
}

// Set records a metric value, or null with its reason.
func (e *Entry) Set(name string, v metrics.Value) {
	e.init()
	if !v.OK() {
		e.Metrics[name] = nil
		e.Undefined[name] = v.Reason
		return
	}
	x := v.V
	e.Metrics[name] = &x
	delete(e.Undefined, name)
}

// Get returns a metric's value and whether it is defined.
func (e *Entry) Get(name string) (float64, bool) {
	if e == nil {
		return 0, false
	}
	p := e.Metrics[name]
	if p == nil {
		return 0, false
	}
	return *p, true
}

func (e *Entry) init() {
	if e.Metrics == nil {
		e.Metrics = map[string]*float64{}
	}
	if e.Counts == nil {
		e.Counts = map[string]int{}
	}
	if e.Undefined == nil {
		e.Undefined = map[string]string{}
	}
	if e.Notes == nil {
		e.Notes = map[string]string{}
	}
}

// MarshalJSON writes the flat object; keys come out sorted.
func (e *Entry) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for k, v := range e.Metrics {
		if strings.HasPrefix(k, "n_") || k == "undefined" || k == "notes" {
			return nil, fmt.Errorf("results: %q cannot be a metric name", k)
		}
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
			return nil, fmt.Errorf("results: metric %s is %v; record undefined metrics with a reason", k, *v)
		}
		if v == nil && e.Undefined[k] == "" {
			return nil, fmt.Errorf("results: metric %s is null without a reason", k)
		}
		m[k] = v
	}
	for k, v := range e.Counts {
		if !strings.HasPrefix(k, "n_") {
			return nil, fmt.Errorf("results: count %q must start with n_", k)
		}
		m[k] = v
	}
	if len(e.Undefined) > 0 {
		m["undefined"] = e.Undefined
	}
	if len(e.Notes) > 0 {
		m["notes"] = e.Notes
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the flat object.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*e = Entry{}
	e.init()
	for k, v := range raw {
		var err error
		switch {
		case k == "undefined":
			err = json.Unmarshal(v, &e.Undefined)
		case k == "notes":
			err = json.Unmarshal(v, &e.Notes)
		case strings.HasPrefix(k, "n_"):
			var n int
			err = json.Unmarshal(v, &n)
			e.Counts[k] = n
		default:
			var x *float64
			err = json.Unmarshal(v, &x)
			e.Metrics[k] = x
		}
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
	}
	for k, v := range e.Metrics {
		if v == nil && e.Undefined[k] == "" {
			return fmt.Errorf("metric %s is null without a reason", k)
		}
	}
	return nil
}

// New returns Results with the schema set and empty maps.
func New(dataset, scheme, model string) *Results {
	return &Results{Schema: Schema, Dataset: dataset, Scheme: scheme, Model: model,
		Settings: map[string]string{}, Categories: map[string]*Entry{}}
}

// CategoryNames returns the category names in sorted order.
func (r *Results) CategoryNames() []string {
	names := make([]string, 0, len(r.Categories))
	for n := range r.Categories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ComputeMean sets Mean to the unweighted mean over categories of every
// metric, as every reference aggregates. A category where a metric is
// undefined is left out of that metric's mean, and a note says which; a
// metric undefined everywhere is null. Counts are summed, and n_categories
// is the number of categories.
func (r *Results) ComputeMean() {
	mean := NewEntry()
	names := r.CategoryNames()
	var keys []string
	for _, n := range names {
		for k := range r.Categories[n].Metrics {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		for k, c := range r.Categories[n].Counts {
			mean.Counts[k] += c
		}
	}
	mean.Counts[NCategories] = len(names)
	for _, k := range keys {
		var sum float64
		var used int
		var missing []string
		for _, n := range names {
			if v, ok := r.Categories[n].Get(k); ok {
				sum += v
				used++
			} else {
				missing = append(missing, n)
			}
		}
		switch {
		case used == 0:
			mean.Set(k, metrics.Value{V: math.NaN(), Reason: "undefined in every category"})
		default:
			mean.Set(k, metrics.Value{V: sum / float64(used)})
			if len(missing) > 0 {
				mean.Notes[k] = fmt.Sprintf("mean over %d of %d categories; undefined in %s",
					used, len(names), strings.Join(missing, ", "))
			}
		}
	}
	r.Mean = mean
}

// Marshal returns the indented JSON of r after checking it.
func (r *Results) Marshal() ([]byte, error) {
	if r.Schema != Schema {
		return nil, fmt.Errorf("results: schema %q, want %q", r.Schema, Schema)
	}
	if r.Dataset == "" {
		return nil, errors.New("results: results without a dataset")
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return append(b, '\n'), nil
}

// Write writes r to path atomically: to a temporary file in the same
// directory, synced, then renamed over path, so that an interrupted run
// never leaves a half-written results.json.
func Write(path string, r *Results) error {
	b, err := r.Marshal()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// Read reads and checks a results.json.
func Read(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	r, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("results: %s: %w", path, err)
	}
	return r, nil
}

// Unmarshal parses results.json bytes; unknown top-level keys and a
// different schema are errors.
func Unmarshal(b []byte) (*Results, error) {
	var probe struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, err
	}
	if probe.Schema != Schema {
		return nil, fmt.Errorf("schema %q, want %q", probe.Schema, Schema)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Results
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}
