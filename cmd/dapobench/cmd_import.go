package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/cli"
)

// runModelsImport converts an official DAPO, AnomalyCLIP, AdaCLIP,
// APRIL-GAN or MultiADS training checkpoint into the canonical
// learned-tensor safetensors file the
// schemes load (package checkpoints).
func runModelsImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("dapobench models import", stderr)
	scheme := fs.String("scheme", "", "scheme of the checkpoint: "+strings.Join(checkpoints.Schemes(), ", ")+" (required)")
	ckpt := fs.String("checkpoint", "", "training checkpoint (.pth) as the official train.py writes it (required)")
	out := fs.String("out", "", "safetensors file to write (required)")
	model := fs.String("model", "", "model directory whose model.json gives the sizes to check (default: the official ViT-L-14-336 sizes)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "scheme", "checkpoint", "out"); err != nil {
		return err
	}
	if !slices.Contains(checkpoints.Schemes(), *scheme) {
		return fmt.Errorf("%w: models import: --scheme %q, want one of %s", cli.ErrUsage, *scheme, strings.Join(checkpoints.Schemes(), ", "))
	}
	var m *clip.Manifest
	if *model != "" {
		var err error
		if m, err = clip.ReadManifest(*model); err != nil {
			return fmt.Errorf("models import: %w", err)
		}
	}
	d, err := checkpoints.DimsOf(*scheme, m)
	if err != nil {
		return fmt.Errorf("models import: %w", err)
	}
	fmt.Fprintf(stderr, "models import: reading %s\n", *ckpt)
	l, err := checkpoints.Import(*ckpt, *scheme, m)
	if err != nil {
		return fmt.Errorf("models import: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("models import: %w", err)
	}
	if err := l.WriteFile(*out); err != nil {
		return fmt.Errorf("models import: %w", err)
	}
	fmt.Fprintf(stdout, "imported %s learned tensors from %s\n", l.Scheme, l.Source)
	fmt.Fprintf(stdout, "source sha256 %s\n", l.SourceSHA256)
	if *model != "" {
		fmt.Fprintf(stdout, "checked against %s (%s)\n", d.Origin, *model)
	} else {
		fmt.Fprintf(stdout, "checked against %s\n", d.Origin)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, name := range l.Names() {
		fmt.Fprintf(tw, "  %s\t%v\n", name, l.Tensors[name].Shape)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "wrote %s (%d tensors, %s)\n", *out, len(l.Tensors), l.Label())
	return nil
}
