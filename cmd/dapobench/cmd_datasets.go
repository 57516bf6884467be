package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/dapobench/dapobench/internal/benchflag"
	"github.com/dapobench/dapobench/internal/cli"
	"github.com/dapobench/dapobench/loaders"
)

func cmdDatasetsScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench datasets scan", stderr)
	var d benchflag.Dataset
	d.Register(fs)
	asJSON := fs.Bool("json", false, "print the counts as JSON")
	deep := fs.Bool("deep", false, "decode every image and mask in full (checks pixel data and mask values; slower)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "dataset", "root"); err != nil {
		return err
	}
	opt := d.Options()
	opt.Deep = *deep
	set, err := loaders.Load(ctx, d.ID, opt)
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
	var d benchflag.Dataset
	d.Register(fs)
	out := fs.String("out", "", "write meta.json here (default: standard output)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "dataset", "root"); err != nil {
		return err
	}
	set, err := loaders.Load(ctx, d.ID, d.Options())
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
