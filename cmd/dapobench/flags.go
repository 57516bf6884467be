package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/dapobench/dapobench/metrics"
	"github.com/dapobench/dapobench/onnx/runner"
)

// checked is a string flag whose value is checked when it is parsed, so
// that a bad value is a usage error (exit status 2) like an unknown flag.
type checked struct {
	p     *string
	check func(string) error
}

func (c checked) String() string {
	if c.p == nil {
		return ""
	}
	return *c.p
}

func (c checked) Set(s string) error {
	if err := c.check(s); err != nil {
		return err
	}
	*c.p = s
	return nil
}

// checkedVar defines a checked string flag stored in p.
func checkedVar(fs *flag.FlagSet, p *string, name, value, usage string, check func(string) error) {
	*p = value
	fs.Var(checked{p, check}, name, usage)
}

// checkedString defines a checked string flag.
func checkedString(fs *flag.FlagSet, name, value, usage string, check func(string) error) *string {
	p := new(string)
	checkedVar(fs, p, name, value, usage, check)
	return p
}

// atLeast defines an int flag whose value must be min or more.
func atLeast(fs *flag.FlagSet, name string, value, min int, usage string) *int {
	p := new(int)
	*p = value
	fs.Var(minInt{p, min}, name, usage)
	return p
}

type minInt struct {
	p   *int
	min int
}

func (m minInt) String() string {
	if m.p == nil {
		return ""
	}
	return strconv.Itoa(*m.p)
}

func (m minInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < m.min {
		return fmt.Errorf("want an integer ≥ %d", m.min)
	}
	*m.p = n
	return nil
}

// deviceFlag is --device, checked as onnxruntime reads it.
func deviceFlag(fs *flag.FlagSet) *string {
	return checkedString(fs, "device", "auto", "`device`: auto, cpu, cuda or cuda:N", func(s string) error {
		_, err := runner.ParseDevice(s)
		return err
	})
}

// threadsFlag is --threads.
func threadsFlag(fs *flag.FlagSet) *int {
	return atLeast(fs, "threads", 0, 0, "onnxruntime threads (0: one per CPU)")
}

// auproFlag is --aupro.
func auproFlag(fs *flag.FlagSet) *string {
	return checkedString(fs, "aupro", string(metrics.AUPROCflow200), "AU-PRO variant: cflow200 (DAPO/AnomalyCLIP code) or mvtec (MVTec evaluation script)",
		func(s string) error { _, err := metrics.ParseAUPROVariant(s); return err })
}
