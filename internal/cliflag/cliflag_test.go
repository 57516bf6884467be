package cliflag

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	color := String(fs, "color", "red", "a colour", func(s string) error {
		if s != "red" && s != "blue" {
			return errors.New("want red or blue")
		}
		return nil
	})
	n := AtLeast(fs, "n", 3, 1, "a count")
	if err := fs.Parse([]string{"-color", "blue", "-n", "5"}); err != nil || *color != "blue" || *n != 5 {
		t.Fatalf("%v %q %d", err, *color, *n)
	}
	for _, bad := range [][]string{{"-color", "green"}, {"-n", "0"}, {"-n", "x"}} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		String(fs, "color", "red", "", func(s string) error { return errors.New("no") })
		AtLeast(fs, "n", 3, 1, "")
		if err := fs.Parse(bad); err == nil || !strings.Contains(err.Error(), "invalid value") {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestLists(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var images Strings
	var layers Ints
	fs.Var(&images, "image", "")
	fs.Var(&layers, "layers", "")
	if err := fs.Parse([]string{"-image", "a.png", "-layers", "1,2", "-image", "b,c.png", "-layers", " 6, 12 "}); err != nil {
		t.Fatal(err)
	}
	if images.String() != "a.png,b,c.png" || len(images) != 2 || layers.String() != "6,12" {
		t.Errorf("images %q, layers %v", images, layers)
	}
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&layers, "layers", "")
	if err := fs.Parse([]string{"-layers", "1,x"}); err == nil || !strings.Contains(err.Error(), `want comma-separated integers, got "1,x"`) {
		t.Errorf("bad list: %v", err)
	}
}
