package main

import (
	"flag"

	"github.com/dapobench/dapobench/internal/cliflag"
	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/onnx/runner"
)

// The flags several commands share, checked as they are parsed so that a
// bad value is a usage error (internal/cliflag).

func deviceFlag(fs *flag.FlagSet) *string {
	return cliflag.String(fs, "device", "auto", "`device`: auto, cpu, cuda or cuda:N", func(s string) error {
		_, err := runner.ParseDevice(s)
		return err
	})
}

func threadsFlag(fs *flag.FlagSet) *int {
	return cliflag.AtLeast(fs, "threads", 0, 0, "onnxruntime threads (0: one per CPU)")
}

func auproFlag(fs *flag.FlagSet) *string {
	return cliflag.String(fs, "aupro", string(metrics.AUPROCflow200), "AU-PRO variant: cflow200 (DAPO/AnomalyCLIP code) or mvtec (MVTec evaluation script)",
		func(s string) error { _, err := metrics.ParseAUPROVariant(s); return err })
}
