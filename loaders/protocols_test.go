package loaders_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dapobench/dapobench/loaders"
)

func load(t *testing.T, id string, opt loaders.Options) *loaders.Set {
	t.Helper()
	set, err := loaders.Load(context.Background(), id, opt)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestVisAProtocols(t *testing.T) {
	dir, _ := fixtureTree(t)
	root := filepath.Join(dir, "visa")
	cases := []struct {
		opt                          loaders.Options
		layout, protocol             string
		trainN, trainA, testN, testA int // candle
		defect                       string
	}{
		{loaders.Options{Root: root}, "visa-raw", "1cls", 5, 0, 3, 4, "chunk of wax missing,weird candle wick"},
		{loaders.Options{Root: root, Protocol: "2cls_fewshot"}, "visa-raw", "2cls_fewshot", 2, 1, 6, 3, ""},
		{loaders.Options{Root: root, Protocol: "2cls_highshot"}, "visa-raw", "2cls_highshot", 5, 2, 3, 2, ""},
		// Prepared trees: asked for by protocol from the raw root, or found
		// by themselves when the root is the prepared folder.
		{loaders.Options{Root: root, Protocol: "prepared"}, "visa-prepared", "prepared", 5, 0, 3, 4, "bad"},
		{loaders.Options{Root: filepath.Join(root, "visa_pytorch")}, "visa-prepared", "prepared", 5, 0, 3, 4, "bad"},
	}
	for _, c := range cases {
		t.Run(c.protocol+"/"+filepath.Base(c.opt.Root), func(t *testing.T) {
			set := load(t, "visa", c.opt)
			if set.Layout != c.layout || set.Protocol != c.protocol {
				t.Errorf("layout %s/%s, want %s/%s", set.Layout, set.Protocol, c.layout, c.protocol)
			}
			cs := loaders.Summarize(set).Categories["candle"]
			if got := [4]int{cs.Train.Normal, cs.Train.Anomalous, cs.Test.Normal, cs.Test.Anomalous}; got != [4]int{c.trainN, c.trainA, c.testN, c.testA} {
				t.Errorf("candle train %d/%d test %d/%d, want %d/%d %d/%d", got[0], got[1], got[2], got[3], c.trainN, c.trainA, c.testN, c.testA)
			}
			if c.defect != "" && cs.DefectTypes[c.defect] == 0 {
				t.Errorf("no defect type %q in %v", c.defect, cs.DefectTypes)
			}
		})
	}
}

func TestVisACollidingStems(t *testing.T) {
	// capsules has Normal/000.JPG and Anomaly/000.JPG: samples are keyed by
	// relative path, never by base name.
	dir, _ := fixtureTree(t)
	set := load(t, "visa", loaders.Options{Root: filepath.Join(dir, "visa"), Category: "capsules"})
	var zeros []string
	for _, s := range set.Samples {
		if filepath.Base(s.RelImage) == "000.JPG" {
			zeros = append(zeros, s.RelImage)
		}
	}
	slices.Sort(zeros)
	want := []string{"capsules/Data/Images/Anomaly/000.JPG", "capsules/Data/Images/Normal/000.JPG"}
	if !slices.Equal(zeros, want) {
		t.Errorf("000.JPG samples %v, want %v", zeros, want)
	}
}

func TestRealIADSets(t *testing.T) {
	dir, _ := fixtureTree(t)
	root := filepath.Join(dir, "real-iad")
	t.Run("single view", func(t *testing.T) {
		set := load(t, "real-iad", loaders.Options{Root: root, Protocol: "realiad_jsons_sv"})
		for _, s := range set.Samples {
			if s.View != "C1" {
				t.Fatalf("%s: view %s in the single-view set", s.RelImage, s.View)
			}
		}
		cs := loaders.Summarize(set).Categories["audiojack"]
		if cs.Train.Normal != 3 || cs.Test.Normal != 2 || cs.Test.Anomalous != 3 {
			t.Errorf("audiojack %+v", *cs)
		}
	})
	t.Run("fuiad nested", func(t *testing.T) {
		set := load(t, "real-iad", loaders.Options{Root: root, Protocol: "realiad_jsons_fuiad_0.1", Resolution: "256"})
		cs := loaders.Summarize(set).Categories["audiojack"]
		if cs.Train.Anomalous != 1 {
			t.Errorf("FUIAD train anomalies %d, want 1", cs.Train.Anomalous)
		}
	})
	t.Run("views filter", func(t *testing.T) {
		set := load(t, "real-iad", loaders.Options{Root: root, Views: []string{"C2", "C3"}})
		for _, s := range set.Samples {
			if s.View != "C2" && s.View != "C3" {
				t.Fatalf("%s: view %s", s.RelImage, s.View)
			}
		}
	})
	t.Run("labels from JSON not path", func(t *testing.T) {
		set := load(t, "real-iad", loaders.Options{Root: root, Category: "audiojack"})
		var ngOK, keys int
		seen := map[string]bool{}
		for _, s := range set.Samples {
			if s.Label == 0 && bytes.Contains([]byte(s.RelImage), []byte("/NG/")) {
				ngOK++
				if s.MaskPath != "" || s.DefectType != "" {
					t.Errorf("%s: normal view with mask %q or defect %q", s.RelImage, s.MaskPath, s.DefectType)
				}
			}
			if !seen[s.SampleKey] {
				seen[s.SampleKey] = true
				keys++
			}
		}
		// BX shows in 2 views, HS in 1, QS in 3: 15 NG views, 6 anomalous.
		if ngOK != 9 {
			t.Errorf("%d OK views under NG/, want 9", ngOK)
		}
		// OK S0001..S0005 and NG/{BX,HS,QS}/S0001: S0001 restarts per folder.
		if keys != 8 {
			t.Errorf("%d sample keys, want 8: %v", keys, seen)
		}
	})
	t.Run("unknown view", func(t *testing.T) {
		if _, err := loaders.Load(context.Background(), "real-iad", loaders.Options{Root: root, Views: []string{"C9"}}); err == nil {
			t.Fatal("no error for view C9")
		}
	})
}

func TestMADSimPairsByStem(t *testing.T) {
	// With 11 unpadded files, sorted images (0, 1, 10, 2, …) and sorted
	// masks (0_mask, 10_mask, 1_mask, …) disagree by position.
	dir, _ := fixtureTree(t)
	set := load(t, "mad-sim", loaders.Options{Root: filepath.Join(dir, "mad-sim"), Category: "01Gorilla"})
	n := 0
	var order []string
	for _, s := range set.Samples {
		if s.DefectType != "Burrs" {
			continue
		}
		n++
		order = append(order, filepath.Base(s.RelImage))
		stem := filepath.Base(s.RelImage)
		stem = stem[:len(stem)-len(".png")]
		if filepath.Base(s.RelMask) != stem+"_mask.png" {
			t.Errorf("%s paired with %s", s.RelImage, s.RelMask)
		}
	}
	if n != 11 {
		t.Fatalf("%d Burrs samples, want 11", n)
	}
	if order[2] != "2.png" || order[10] != "10.png" {
		t.Errorf("order %v is not numeric", order)
	}
	if set.Samples[0].CategoryName != "Gorilla" {
		t.Errorf("category name %q, want Gorilla", set.Samples[0].CategoryName)
	}
}

func TestMetaRoundTrip(t *testing.T) {
	dir, _ := fixtureTree(t)
	for _, id := range []string{"mvtec", "visa", "mad-sim", "real-iad"} {
		t.Run(id, func(t *testing.T) {
			root := filepath.Join(dir, id)
			set := load(t, id, loaders.Options{Root: root})
			var buf bytes.Buffer
			if _, err := loaders.MetaOf(set).WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			metaPath := filepath.Join(t.TempDir(), "meta.json")
			write(t, filepath.Dir(metaPath), "meta.json", buf.String())
			again := load(t, id, loaders.Options{Root: root, Meta: metaPath})
			if len(again.Samples) != len(set.Samples) {
				t.Fatalf("%d samples from meta.json, want %d", len(again.Samples), len(set.Samples))
			}
			for i, s := range set.Samples {
				a := again.Samples[i]
				if a.RelImage != s.RelImage || a.RelMask != s.RelMask || a.Label != s.Label || a.Split != s.Split || (s.Label == 1 && a.DefectType != s.DefectType) {
					t.Fatalf("sample %d: %+v\nwant %+v", i, a, s)
				}
			}
			// Writing again gives the same bytes.
			var buf2 bytes.Buffer
			loaders.MetaOf(again).WriteTo(&buf2)
			if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
				t.Error("meta.json differs after a round trip")
			}
		})
	}
}

func TestParseMetaVariants(t *testing.T) {
	// The layout of the MAD metas DAPO ships: product_cls/defect_cls keys,
	// category keys without the numeric prefix.
	mad := `{"train": {}, "test": {"Gorilla": [
	  {"img_path": "01Gorilla/test/Burrs/0.png", "mask_path": "01Gorilla/ground_truth/Burrs/0_mask.png", "product_cls": "Gorilla", "defect_cls": "Burrs", "anomaly": 1}]}}`
	m, err := loaders.ParseMeta([]byte(mad))
	if err != nil {
		t.Fatal(err)
	}
	r := m.Splits["test"]["Gorilla"][0]
	if r.ClsName != "Gorilla" || r.SpecieName != "Burrs" || r.Anomaly != 1 {
		t.Errorf("%+v", r)
	}
	// The VisA meta DAPO ships has no split level: read as test.
	visa := `{"candle": [{"img_path": "candle/Data/Images/Normal/0000.JPG", "mask_path": "", "product_cls": "candle", "defect_cls": "normal", "anomaly": 0}]}`
	m, err = loaders.ParseMeta([]byte(visa))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Splits["test"]["candle"]) != 1 {
		t.Errorf("%+v", m)
	}
	for _, bad := range []string{
		`{"test": {"x": [{"img_path": "a", "mask_path": "", "cls_name": "x", "specie_name": "good", "anomaly": 2}]}}`,
		`{"test": {"x": [{"img_path": "a", "mask_path": "", "cls_name": "x", "specie_name": "good", "anomaly": 0, "extra": 1}]}}`,
		`{"test": {"x": [{"img_path": "a", "cls_name": "x", "specie_name": "good", "anomaly": 0}]}}`,
		`{"test": {"x": {}}}`,
		`[1, 2]`,
		`{"test": {}} trailing`,
	} {
		if _, err := loaders.ParseMeta([]byte(bad)); err == nil {
			t.Errorf("no error for %s", bad)
		}
	}
}

// TestMetaWriteFile: WriteFile writes WriteTo's bytes, creating the folder.
func TestMetaWriteFile(t *testing.T) {
	dir, _ := fixtureTree(t)
	m := loaders.MetaOf(load(t, "mvtec", loaders.Options{Root: filepath.Join(dir, "mvtec")}))
	var want bytes.Buffer
	if _, err := m.WriteTo(&want); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a", "b", "meta.json")
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("%s: %v, differs from WriteTo: %v", path, err, !bytes.Equal(got, want.Bytes()))
	}
}
