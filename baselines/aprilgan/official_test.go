package aprilgan

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dapobench/dapobench/baselines/internal/parity"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/race"
)

// officialInputs makes TestOfficialParity write the inputs of
// testdata/reference.py instead of testing:
//
//	go test ./baselines/aprilgan -run OfficialParity -official-inputs DIR
//	/usr/bin/python3 baselines/aprilgan/testdata/reference.py VAND-APRIL-GAN DIR
var officialInputs = flag.String("official-inputs", "", "write the inputs of testdata/reference.py to this folder")

// Tolerances against the official float32 PyTorch run: maps (values in
// [0, 4]) and image scores (probabilities).
const (
	mapTol   = 1e-4
	scoreTol = 1e-4
)

// reference is testdata/reference.json.
type reference struct {
	Official struct {
		Repo   string `json:"repo"`
		Commit string `json:"commit"`
	} `json:"official"`
	WeightsDigest string            `json:"weights_digest"`
	ImageSize     int               `json:"image_size"`
	Files         map[string]string `json:"files_sha256"`
	MapSample     parity.MapSample  `json:"map_sample"`
	Patches       map[string]string `json:"patches"`
	Train         trainReference    `json:"train"`
	Test          struct {
		Checkpoint string         `json:"checkpoint"`
		Images     []parity.Image `json:"images"`
	} `json:"test"`
}

// trainReference is the training part of reference.json.
type trainReference struct {
	Seed    uint64  `json:"seed"`
	Batch   int     `json:"batch"`
	LR      float64 `json:"lr"`
	Init    string  `json:"init"`
	Checkpt string  `json:"checkpoint"`
	Steps   []struct {
		ImgPath  []string `json:"img_path"`
		Loss     float64  `json:"loss"`
		PerLayer []struct {
			Focal float64 `json:"focal"`
			Dice  float64 `json:"dice"`
		} `json:"per_layer"`
	} `json:"steps"`
}

func readReference(t *testing.T) *reference {
	t.Helper()
	b, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Test.Images) == 0 || len(r.Train.Steps) == 0 {
		t.Fatal("reference.json holds no images or steps")
	}
	return &r
}

// checkInputs fails t unless the weights and images are those the
// reference was computed from.
func checkInputs(t *testing.T, r *reference, d *parity.Data) {
	t.Helper()
	if got := parity.WeightsDigest(parity.Weights()); got != r.WeightsDigest {
		t.Fatalf("the parity weights changed (digest %s, reference %s): regenerate testdata (see reference.py)", got, r.WeightsDigest)
	}
	files := d.Files(t, "mvtec")
	if len(files) != len(r.Files) {
		t.Fatalf("%d input files, the reference %d", len(files), len(r.Files))
	}
	for rel, want := range r.Files {
		if files[rel] != want {
			t.Fatalf("fixture %s changed (sha256 %s, reference %s): regenerate testdata", rel, files[rel], want)
		}
	}
}

// officialScheme is APRIL-GAN with the checkpoint of the official
// train.py.
func officialScheme(t *testing.T, r *reference, m *bench.Model) *Scheme {
	t.Helper()
	l, err := checkpoints.Import(filepath.Join("testdata", r.Test.Checkpoint), checkpoints.APRILGAN, m.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Learned: l})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOfficialParity runs APRIL-GAN zero-shot with the checkpoint the
// official train.py wrote (three Adam steps on the fixture images) on a
// tiny CLIP of ViT-L's depth at 518 pixels, and compares every image's
// summed map and image score with the official test.py run unchanged on
// the same weights and images (testdata/reference.py). It then upsamples
// with align_corners=False, as AnomalyCLIP does, and checks that the
// comparison catches it.
func TestOfficialParity(t *testing.T) {
	race.SkipNumeric(t)
	if *officialInputs != "" {
		parity.WriteInputs(t, *officialInputs, "mvtec")
		t.Skipf("wrote the inputs of testdata/reference.py to %s", *officialInputs)
	}
	r := readReference(t)
	dir := t.TempDir()
	d := parity.WriteData(t, dir, "mvtec")
	checkInputs(t, r, d)
	m := parity.Model(t, dir, clip.APRILGAN)
	if m.Manifest.Arch.Act != clip.GELU {
		t.Fatalf("the aprilgan model runs %s at 518 pixels; the official factory runs exact GELU", m.Manifest.Arch.Act)
	}
	cache, err := featcache.Open(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	ref := parity.ReadReference(t, "testdata/reference.safetensors")
	size := m.Manifest.ImageSize
	s := officialScheme(t, r, m)
	maps, scores := parity.Run(t, d, "mvtec", m, s, cache)
	parity.Check(t, parity.Compare(t, r.Test.Images, ref, "test/", r.MapSample, maps, scores, size), mapTol, scoreTol)

	alignCorners = false
	defer func() { alignCorners = true }()
	maps, scores = parity.Run(t, d, "mvtec", m, s, cache)
	worst := 0.0
	for _, c := range parity.Compare(t, r.Test.Images, ref, "test/", r.MapSample, maps, scores, size) {
		worst = math.Max(worst, c.DMap)
	}
	t.Logf("align_corners=False: maps differ by up to %.3g", worst)
	if worst <= mapTol {
		t.Errorf("upsampling with align_corners=False moves the maps by %.3g only: the comparison cannot tell the quirk", worst)
	}
}
