package aprilgan

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/baselines/internal/parity"
	"github.com/dapobench/dapobench/bench"
	"github.com/dapobench/dapobench/bench/featcache"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/npy"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/results"
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
		Checkpoint string `json:"checkpoint"`
		Images     []struct {
			ImgPath      string    `json:"img_path"`
			ClsName      string    `json:"cls_name"`
			Label        int       `json:"label"`
			SoftmaxProbs []float64 `json:"softmax_probs"`
			ImageScore   float64   `json:"image_score"`
			MapSum       float64   `json:"map_sum"`
			MapMax       float64   `json:"map_max"`
			Top3Mean     float64   `json:"top3_mean"`
		} `json:"images"`
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

// runOfficial runs the scheme with the official checkpoint through
// bench.Run (features cached in cache) and returns, by image, the saved
// map and the image score.
func runOfficial(t *testing.T, r *reference, d *parity.Data, m *bench.Model, cache *featcache.Cache) (map[string][]float32, map[string]float64) {
	t.Helper()
	l, err := checkpoints.Import(filepath.Join("testdata", r.Test.Checkpoint), checkpoints.APRILGAN, m.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Learned: l})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	recs, err := bench.Run(context.Background(), bench.Config{Dataset: "mvtec", Loader: d.Loader("mvtec"), Model: m, Scheme: s,
		Out: out, SaveMaps: true, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	maps, scores := map[string][]float32{}, map[string]float64{}
	for _, rec := range recs {
		imgs, _, _, sc, err := results.ReadScores(out, rec.Category)
		if err != nil {
			t.Fatal(err)
		}
		for i, rel := range imgs {
			scores[rel] = sc[i]
			p := filepath.Join(out, results.MapsDir, filepath.FromSlash(strings.TrimSuffix(rel, path.Ext(rel))+".npy"))
			a, err := npy.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			maps[rel] = a.Data
		}
	}
	return maps, scores
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
	maps, scores := runOfficial(t, r, d, m, cache)
	for _, c := range compareImages(t, r, ref, maps, scores, size) {
		if c.dMap > mapTol {
			t.Errorf("%s: the map differs from the official one by %.3g (%s)", c.image, c.dMap, c.detail)
		}
		if c.dScore > scoreTol {
			t.Errorf("%s: image score %.7f, official %.7f", c.image, c.got, c.want)
		}
	}

	alignCorners = false
	defer func() { alignCorners = true }()
	maps, scores = runOfficial(t, r, d, m, cache)
	worst := 0.0
	for _, c := range compareImages(t, r, ref, maps, scores, size) {
		worst = math.Max(worst, c.dMap)
	}
	t.Logf("align_corners=False: maps differ by up to %.3g", worst)
	if worst <= mapTol {
		t.Errorf("upsampling with align_corners=False moves the maps by %.3g only: the comparison cannot tell the quirk", worst)
	}
}

// comparison is one image against the reference.
type comparison struct {
	image        string
	dMap, dScore float64
	got, want    float64 // image scores
	detail       string
}

// compareImages compares each image's sampled map, map sum, maximum and
// top-3 mean and its image score with the reference.
func compareImages(t *testing.T, r *reference, ref *parity.Reference, maps map[string][]float32, scores map[string]float64, size int) []comparison {
	t.Helper()
	var out []comparison
	worstMap, worstScore := 0.0, 0.0
	for i, im := range r.Test.Images {
		got, ok := maps[im.ImgPath]
		if !ok || len(got) != size*size {
			t.Fatalf("%s: no %d×%d map", im.ImgPath, size, size)
		}
		want := ref.Tensor(t, fmt.Sprintf("test/%d/map", i))
		dm := parity.MaxAbsDiff(r.MapSample.Take(got, size), want.Data)
		var sum float64
		for _, v := range got {
			sum += float64(v)
		}
		ds := math.Abs(sum-im.MapSum) / float64(size*size) // mean per-pixel difference
		dx := math.Abs(float64(slices.Max(got)) - im.MapMax)
		dt := math.Abs(top3(got) - im.Top3Mean)
		c := comparison{image: im.ImgPath, dMap: math.Max(math.Max(dm, ds), math.Max(dx, dt)),
			got: scores[im.ImgPath], want: im.ImageScore,
			detail: fmt.Sprintf("sampled pixels %.2g, mean %.2g, maximum %.2g, top-3 mean %.2g", dm, ds, dx, dt)}
		c.dScore = math.Abs(c.got - c.want)
		t.Logf("%s: map within %.2g (%s), image score %.7f, official %.7f", c.image, c.dMap, c.detail, c.got, c.want)
		worstMap, worstScore = math.Max(worstMap, c.dMap), math.Max(worstScore, c.dScore)
		out = append(out, c)
	}
	t.Logf("%d images: maps within %.2g, image scores within %.2g of the official test.py", len(out), worstMap, worstScore)
	return out
}

// top3 is test.py's np.mean(np.partition(map, -3)[-3:]).
func top3(m []float32) float64 {
	s := slices.Clone(m)
	slices.Sort(s)
	return (float64(s[len(s)-1]) + float64(s[len(s)-2]) + float64(s[len(s)-3])) / 3
}
