package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/internal/cliflag"
	"github.com/dapobench/dapobench/loaders"
)

// datasetFlags are the flags every command that reads a dataset shares.
type datasetFlags struct {
	id, root, category, protocol, resolution, views, meta string
}

func (d *datasetFlags) register(fs *flag.FlagSet) {
	cliflag.StringVar(fs, &d.id, "dataset", "", "dataset `id`: "+strings.Join(loaders.IDs(), ", "), func(s string) error { _, err := loaders.Lookup(s); return err })
	fs.StringVar(&d.root, "root", "", "dataset root directory")
	fs.StringVar(&d.category, "category", "", "read one category only")
	fs.StringVar(&d.protocol, "protocol", "", "VisA split (1cls, 2cls_fewshot, 2cls_highshot, prepared) or Real-IAD JSON set (realiad_jsons, realiad_jsons_sv, …)")
	fs.StringVar(&d.resolution, "resolution", "", "Real-IAD image folder: 256, 512, 1024 or raw (default: the only one present)")
	fs.StringVar(&d.views, "views", "", "Real-IAD cameras to keep, comma-separated (e.g. C1)")
	fs.StringVar(&d.meta, "meta", "", "read samples from this CLIP-style meta.json instead of the layout")
}

func (d *datasetFlags) options() loaders.Options {
	o := loaders.Options{Root: d.root, Category: d.category, Protocol: d.protocol, Resolution: d.resolution, Meta: d.meta}
	if d.views != "" {
		o.Views = strings.Split(d.views, ",")
	}
	return o
}

func cmdDatasetsScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench datasets scan", stderr)
	var d datasetFlags
	d.register(fs)
	asJSON := fs.Bool("json", false, "print the counts as JSON")
	deep := fs.Bool("deep", false, "decode every image and mask in full (checks pixel data and mask values; slower)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "dataset", "root"); err != nil {
		return err
	}
	opt := d.options()
	opt.Deep = *deep
	set, err := loaders.Load(ctx, d.id, opt)
	if err != nil {
		return err
	}
	sum := loaders.Summarize(set)
	for _, n := range set.Notes {
		fmt.Fprintln(stderr, "note:", n)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	return sum.WriteTable(stdout, set)
}

func cmdDatasetsMeta(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench datasets meta", stderr)
	var d datasetFlags
	d.register(fs)
	out := fs.String("out", "", "write meta.json here (default: standard output)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "dataset", "root"); err != nil {
		return err
	}
	set, err := loaders.Load(ctx, d.id, d.options())
	if err != nil {
		return err
	}
	m := loaders.MetaOf(set)
	if *out == "" {
		_, err := m.WriteTo(stdout)
		return err
	}
	return m.WriteFile(*out)
}
