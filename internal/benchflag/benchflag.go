// Package benchflag defines the flags that several dapobench commands
// share (the dataset selection, the device, onnxruntime threads, the
// AU-PRO variant) once, so that every command spells, documents and
// checks them alike. Values are checked as they are parsed
// (internal/cliflag), so a bad one is a usage error before any work.
package benchflag

import (
	"flag"
	"strings"

	"github.com/dapobench/dapobench/internal/cliflag"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/onnx/runner"
)

// Dataset is the selection of a command that reads a dataset: --dataset,
// --root and the loader options.
type Dataset struct {
	ID, Root, Category, Protocol, Resolution, Views, Meta string
}

// Register defines the selection's flags on fs.
func (d *Dataset) Register(fs *flag.FlagSet) {
	cliflag.StringVar(fs, &d.ID, "dataset", "", "dataset `id`: "+strings.Join(loaders.IDs(), ", "), func(s string) error { _, err := loaders.Lookup(s); return err })
	fs.StringVar(&d.Root, "root", "", "dataset root directory")
	fs.StringVar(&d.Category, "category", "", "read one category only")
	fs.StringVar(&d.Protocol, "protocol", "", "VisA split (1cls, 2cls_fewshot, 2cls_highshot, prepared) or Real-IAD JSON set (realiad_jsons, realiad_jsons_sv, …)")
	fs.StringVar(&d.Resolution, "resolution", "", "Real-IAD image folder: 256, 512, 1024 or raw (default: the only one present)")
	fs.StringVar(&d.Views, "views", "", "Real-IAD cameras to keep, comma-separated (e.g. C1)")
	fs.StringVar(&d.Meta, "meta", "", "read samples from this CLIP-style meta.json instead of the layout")
}

// Options returns the loader options the flags select.
func (d *Dataset) Options() loaders.Options {
	o := loaders.Options{Root: d.Root, Category: d.Category, Protocol: d.Protocol, Resolution: d.Resolution, Meta: d.Meta}
	if d.Views != "" {
		o.Views = strings.Split(d.Views, ",")
	}
	return o
}

// Device defines --device: auto, cpu, cuda or cuda:N (runner.ParseDevice).
func Device(fs *flag.FlagSet) *string {
	return cliflag.String(fs, "device", "auto", "`device`: auto, cpu, cuda or cuda:N", func(s string) error {
		_, err := runner.ParseDevice(s)
		return err
	})
}

// Threads defines --threads, onnxruntime's intra-op threads.
func Threads(fs *flag.FlagSet) *int {
	return cliflag.AtLeast(fs, "threads", 0, 0, "onnxruntime threads (0: one per CPU)")
}

// AUPRO defines --aupro, the AU-PRO variant (metrics.ParseAUPROVariant).
func AUPRO(fs *flag.FlagSet) *string {
	return cliflag.String(fs, "aupro", string(metrics.AUPROCflow200), "AU-PRO variant: cflow200 (DAPO/AnomalyCLIP code) or mvtec (MVTec evaluation script)",
		func(s string) error { _, err := metrics.ParseAUPROVariant(s); return err })
}
