package benchflag

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/loaders"
)

func newFS() *flag.FlagSet {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func TestDataset(t *testing.T) {
	fs := newFS()
	var d Dataset
	d.Register(fs)
	err := fs.Parse([]string{"--dataset", "real-iad", "--root", "r", "--category", "toy", "--protocol", "realiad_jsons_sv",
		"--resolution", "256", "--views", "C1,C3", "--meta", "m.json"})
	if err != nil {
		t.Fatal(err)
	}
	want := loaders.Options{Root: "r", Category: "toy", Protocol: "realiad_jsons_sv", Resolution: "256", Views: []string{"C1", "C3"}, Meta: "m.json"}
	o := d.Options()
	if d.ID != "real-iad" || o.Root != want.Root || o.Category != want.Category || o.Protocol != want.Protocol ||
		o.Resolution != want.Resolution || !slices.Equal(o.Views, want.Views) || o.Meta != want.Meta {
		t.Errorf("%q: %+v, want %+v", d.ID, o, want)
	}
	var none Dataset
	none.Register(newFS())
	if o := none.Options(); o.Views != nil {
		t.Errorf("no --views: %q", o.Views)
	}
}

func TestChecked(t *testing.T) {
	fs := newFS()
	var d Dataset
	d.Register(fs)
	device, threads, aupro := Device(fs), Threads(fs), AUPRO(fs)
	if err := fs.Parse(nil); err != nil || *device != "auto" || *threads != 0 || *aupro != "cflow200" {
		t.Fatalf("defaults: %v %q %d %q", err, *device, *threads, *aupro)
	}
	if err := fs.Parse([]string{"--device", "cuda:1", "--threads", "4", "--aupro", "mvtec"}); err != nil || *device != "cuda:1" || *threads != 4 || *aupro != "mvtec" {
		t.Errorf("%v %q %d %q", err, *device, *threads, *aupro)
	}
	for _, bad := range [][]string{{"--dataset", "mvtec-ad"}, {"--device", "tpu"}, {"--threads", "-1"}, {"--aupro", "pro"}} {
		fs := newFS()
		var d Dataset
		d.Register(fs)
		Device(fs)
		Threads(fs)
		AUPRO(fs)
		if err := fs.Parse(bad); err == nil || !strings.Contains(err.Error(), "invalid value") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
