package main

import (
	"context"
	"io"
)

// demoReport writes the demo's RESULTS.md once a report command exists.
func demoReport(ctx context.Context, out string, runs []string, stdout, stderr io.Writer) error {
	return nil
}
