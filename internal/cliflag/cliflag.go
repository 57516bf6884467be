// Package cliflag defines command-line flags whose values are checked as
// they are parsed, so that a bad value is a usage error from the flag
// package itself (exit status 2), exactly like an unknown flag, and no
// command starts work on a value it will later refuse. Its list flags
// (Strings, Ints) gather a repeated flag or a comma-separated one.
package cliflag

import (
	"flag"
	"fmt"
	"strconv"
)

// checked is a string flag whose value check accepts.
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

// StringVar defines a checked string flag stored in p, with a default that
// is not checked.
func StringVar(fs *flag.FlagSet, p *string, name, value, usage string, check func(string) error) {
	*p = value
	fs.Var(checked{p, check}, name, usage)
}

// String defines a checked string flag.
func String(fs *flag.FlagSet, name, value, usage string, check func(string) error) *string {
	p := new(string)
	StringVar(fs, p, name, value, usage, check)
	return p
}

// AtLeast defines an int flag whose value must be min or more.
func AtLeast(fs *flag.FlagSet, name string, value, min int, usage string) *int {
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
