package train_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dapobench/dapobench/bench/preprocess"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/clip/safetensors"
	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/race"
	"github.com/dapobench/dapobench/loaders"
	"github.com/dapobench/dapobench/train"
)

// officialInputs makes TestOfficialStep write the inputs of
// testdata/gen_official_step.py instead of testing:
//
//	go test ./train -run OfficialStep -official-inputs DIR
//	/usr/bin/python3 train/testdata/gen_official_step.py OFFICIAL_DAPO_REPO DIR train/testdata
var officialInputs = flag.String("official-inputs", "", "write the inputs of testdata/gen_official_step.py to this folder")

// officialArch is a tiny CLIP with ViT-L/14's depth (24 vision, 12 text
// blocks: DAPO's 24 visual and 12 text prompt layers, feature layers 6,
// 12, 18, 24) and small widths. Its 32-pixel input is smaller than the
// 64×48 fixture images, so images and masks are resized as in every real
// dataset.
var officialArch = clip.Arch{
	Name: "tiny-vitl-depth", ImageSize: 32, PatchSize: 8,
	VisionWidth: 32, VisionLayers: 24, VisionHeads: 2,
	TextWidth: 32, TextLayers: 12, TextHeads: 2,
	ContextLength: 77, VocabSize: 49408, EmbedDim: 16, Act: clip.QuickGELU,
}

// officialWeightsSeed seeds clip.TinyWeights for officialArch.
const officialWeightsSeed = 7

// officialSamples are the mvtec fixture images of the step: four defect
// types of three categories (one grayscale) and two normal images, one
// batch.
var officialSamples = []struct{ image, mask string }{
	{"bottle/test/broken_large/000.png", "bottle/ground_truth/broken_large/000_mask.png"},
	{"bottle/test/contamination/001.png", "bottle/ground_truth/contamination/001_mask.png"},
	{"grid/test/bent/000.png", "grid/ground_truth/bent/000_mask.png"},
	{"hazelnut/test/crack/001.png", "hazelnut/ground_truth/crack/001_mask.png"},
	{"bottle/test/good/000.png", ""},
	{"hazelnut/test/good/002.png", ""},
}

// officialStep is testdata/official_step.json, written by
// gen_official_step.py from the official trainer.
type officialStep struct {
	Official struct {
		Repo   string `json:"repo"`
		Commit string `json:"commit"`
	} `json:"official"`
	Inputs struct {
		Weights string            `json:"weights_sha256"`
		Files   map[string]string `json:"files_sha256"`
	} `json:"inputs"`
	Init struct {
		File   string `json:"file"`
		SHA256 string `json:"sha256"`
	} `json:"init"`
	ImageSize int     `json:"image_size"`
	Batch     int     `json:"batch"`
	LR        float64 `json:"lr"`
	Seed      uint64  `json:"seed"`
	Readings  map[string]struct {
		Loss  float64 `json:"loss"`
		Local float64 `json:"loss_local"`
		Image float64 `json:"loss_image"`
		Focal float64 `json:"loss_focal"`
		Dice  float64 `json:"loss_dice"`
		// Masks are the binary masks the trainer read, by image: one
		// '0' or '1' per pixel, row-major.
		Masks map[string]string `json:"masks"`
	} `json:"readings"`
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// officialData writes the weights and the step's dataset under dir.
func officialData(t *testing.T, dir string) (weights, root string) {
	t.Helper()
	fx := t.TempDir()
	if _, err := fixtures.Generate(context.Background(), fx, fixtures.DefaultSeed); err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(dir, "mvtec")
	var files []string
	for _, s := range officialSamples {
		files = append(files, s.image, s.mask)
	}
	// The loader wants the MVTec-AD layout, train split included; training
	// reads the test split alone.
	for _, c := range []string{"bottle", "grid", "hazelnut"} {
		files = append(files, c+"/train/good/000.png")
	}
	{
		for _, rel := range files {
			if rel == "" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(fx, "mvtec", rel))
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	weights = filepath.Join(dir, "weights.safetensors")
	if err := clip.TinyWeights(officialArch, officialWeightsSeed).WriteSafetensors(weights); err != nil {
		t.Fatal(err)
	}
	return weights, root
}

func writeOfficialInputs(t *testing.T, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	officialData(t, dir)
	arch, err := json.MarshalIndent(officialArch, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]string
	for _, s := range officialSamples {
		list = append(list, map[string]string{"image": s.image, "mask": s.mask})
	}
	lb, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"arch.json": arch, "samples.json": lb} {
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// officialRun is one step of dapobench train from the official initial
// tensors, with one mask reading.
type officialRun struct {
	loss, local, image, focal, dice float64
	grads, after                    map[string][]float32
}

// TestOfficialStep compares one training step of DAPO, from the initial
// tensors the official code draws (written by its own save_checkpoint,
// imported with checkpoints.Import), on fixture images that must be
// resized, with the official train.py run unchanged on the same weights
// and images (testdata/gen_official_step.py), for both mask readings:
//
//   - the masks each reading gives are the official trainer's, pixel for
//     pixel;
//   - the loss, its terms, the gradients of all 12 learned tensors and
//     the tensors after Adam's first step match the official values of
//     the same reading, the default reading being the official
//     trainer's own;
//   - the change from one reading to the other (fewer defect pixels
//     when truncating) moves every loss term and the gradients as it
//     moves them in the official code.
func TestOfficialStep(t *testing.T) {
	race.SkipNumeric(t)
	if *officialInputs != "" {
		writeOfficialInputs(t, *officialInputs)
		t.Skipf("wrote the inputs of gen_official_step.py to %s", *officialInputs)
	}
	if testing.Short() {
		t.Skip("a 24-block model: not in -short")
	}
	var ref officialStep
	b, err := os.ReadFile("testdata/official_step.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	grads, err := safetensors.ReadFile("testdata/official_step.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	official := func(kind, reading, name string) []float32 {
		x, ok := grads.Get(kind + "/" + reading + "/" + name)
		if !ok {
			t.Fatalf("official_step.safetensors lacks %s/%s/%s", kind, reading, name)
		}
		v, err := x.Float32()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// The inputs must be those the reference was computed from.
	dir := t.TempDir()
	weights, root := officialData(t, dir)
	if got := sha256File(t, weights); got != ref.Inputs.Weights {
		t.Fatalf("the tiny weights changed (sha256 %s, reference %s): regenerate testdata/official_step.* (see gen_official_step.py)", got, ref.Inputs.Weights)
	}
	for rel, want := range ref.Inputs.Files {
		if got := sha256File(t, filepath.Join(root, rel)); got != want {
			t.Fatalf("fixture %s changed (sha256 %s, reference %s): regenerate testdata/official_step.*", rel, got, want)
		}
	}
	if len(ref.Inputs.Files) != len(officialSamples)+4 || ref.Batch != len(officialSamples) || ref.ImageSize != officialArch.ImageSize {
		t.Fatalf("reference of %d files, batch %d, size %d", len(ref.Inputs.Files), ref.Batch, ref.ImageSize)
	}

	model := filepath.Join(dir, "model")
	w, err := clip.ReadWeights(weights)
	if err != nil {
		t.Fatal(err)
	}
	man, err := clip.Build(context.Background(), model, officialArch, w, clip.Options{Variant: clip.DAPO}, clip.SourceInfo{File: weights})
	if err != nil {
		t.Fatal(err)
	}
	initPath := filepath.Join("testdata", ref.Init.File)
	if got := sha256File(t, initPath); got != ref.Init.SHA256 {
		t.Fatalf("%s: sha256 %s, reference %s", initPath, got, ref.Init.SHA256)
	}
	l, err := checkpoints.Import(initPath, checkpoints.DAPO, man)
	if err != nil {
		t.Fatal(err)
	}
	imported := filepath.Join(dir, "init.safetensors")
	if err := l.WriteFile(imported); err != nil {
		t.Fatal(err)
	}
	init, err := train.ReadInit(imported)
	if err != nil {
		t.Fatal(err)
	}

	// The masks of both readings, pixel for pixel.
	spec := preprocess.OpenAI(officialArch.ImageSize)
	n := officialArch.ImageSize
	for _, rule := range train.MaskRules() {
		r, ok := ref.Readings[string(rule)]
		if !ok {
			t.Fatalf("no reference for mask rule %s", rule)
		}
		for _, s := range officialSamples {
			levels := make([]uint8, n*n)
			if s.mask != "" {
				m, err := loaders.ReadMask(filepath.Join(root, s.mask))
				if err != nil {
					t.Fatal(err)
				}
				if err := spec.MaskLevels(levels, m.Pix, m.Width, m.Height); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]byte, n*n)
			ones := 0
			for i, v := range levels {
				got[i] = '0'
				if rule.Defect(v) {
					got[i] = '1'
					ones++
				}
			}
			if want := r.Masks[s.image]; string(got) != want {
				t.Errorf("%s: %s: the mask differs from the official trainer's", rule, s.image)
			}
			t.Logf("%s: %s: %d defect pixels of %d", rule, s.image, ones, n*n)
		}
	}

	// Truncating keeps a subset of the thresholded defect pixels.
	fewer := 0
	for img, trunc := range ref.Readings[string(train.MaskTruncate)].Masks {
		thr := ref.Readings[string(train.MaskThreshold)].Masks[img]
		for i := range trunc {
			if trunc[i] == '1' && thr[i] != '1' {
				t.Fatalf("%s: pixel %d is defect when truncating and not when thresholding", img, i)
			}
			if trunc[i] != thr[i] {
				fewer++
			}
		}
	}
	if fewer == 0 {
		t.Fatal("the readings give the same masks: the step tests nothing")
	}
	t.Logf("truncating drops %d of the thresholded defect pixels", fewer)

	runs := map[train.MaskRule]officialRun{}
	for _, rule := range []train.MaskRule{"", train.MaskThreshold} {
		tr, err := train.New(context.Background(), rt, train.Config{Scheme: checkpoints.DAPO, Variant: "dapo", Dataset: "mvtec",
			Loader: loaders.Options{Root: root}, ModelDir: model, MaskRule: rule, Init: init,
			Recipe: train.Recipe{Epochs: 1, Batch: ref.Batch, LR: ref.LR, Seed: ref.Seed}})
		if err != nil {
			t.Fatal(err)
		}
		start := map[string][]float32{}
		for k, x := range tr.State().Tensors {
			start[k] = slices.Clone(x.Data)
		}
		if err := tr.Run(context.Background(), train.Hooks{}); err != nil {
			t.Fatal(err)
		}
		tr.Close()
		s := tr.State()
		if rule == "" {
			rule = s.Settings.MaskRule
			if rule != train.MaskTruncate {
				t.Errorf("dapo trains with mask rule %s by default, want %s (train.py's)", rule, train.MaskTruncate)
			}
		}
		if s.Adam.Step != 1 || len(s.History) != 1 {
			t.Fatalf("%s: %d steps, %d epochs", rule, s.Adam.Step, len(s.History))
		}
		if s.Init == nil || s.Init.SHA256 != init.From.SHA256 {
			t.Errorf("%s: the state does not record the init: %+v", rule, s.Init)
		}
		h := s.History[0]
		run := officialRun{loss: h.Loss, local: h.Local, image: h.Image, focal: h.Focal, dice: h.Dice,
			grads: map[string][]float32{}, after: map[string][]float32{}}
		for k, m := range s.Adam.M {
			// After one step m = (1−β1)·g, exactly in float32 (β1 = 0.5).
			g := make([]float32, len(m))
			for i, v := range m {
				g[i] = v / (1 - train.Beta1)
			}
			run.grads[k] = g
			run.after[k] = s.Tensors[k].Data
			if !slices.Equal(start[k], init.Learned.Tensors[k].Data) {
				t.Errorf("%s: %s did not start from the init", rule, k)
			}
		}
		if len(run.grads) != 12 {
			t.Fatalf("%s: %d learned tensors, want 12", rule, len(run.grads))
		}
		runs[rule] = run
	}

	terms := func(r officialRun) []float64 { return []float64{r.loss, r.local, r.image, r.focal, r.dice} }
	names := []string{"loss", "local", "image", "focal", "dice"}
	refTerms := func(rule train.MaskRule) []float64 {
		r := ref.Readings[string(rule)]
		return []float64{r.Loss, r.Local, r.Image, r.Focal, r.Dice}
	}
	for _, rule := range train.MaskRules() {
		got, want := terms(runs[rule]), refTerms(rule)
		for i := range got {
			rel := math.Abs(got[i]-want[i]) / math.Abs(want[i])
			t.Logf("%s: %s %.8g, official %.8g (relative %.2g)", rule, names[i], got[i], want[i], rel)
			if rel > 2e-6 {
				t.Errorf("%s: %s %.8g, official %.8g (relative %.2g)", rule, names[i], got[i], want[i], rel)
			}
		}
		worstGrad, worstAfter := 0.0, 0.0
		for _, k := range slices.Sorted(maps.Keys(runs[rule].grads)) {
			o := official("grad", string(rule), k)
			d, scale := maxAbsDiff(runs[rule].grads[k], o), maxAbs(o)
			worstGrad = math.Max(worstGrad, d/scale)
			if d > 2e-5*scale {
				t.Errorf("%s: gradient of %s: max difference %.3g, %.2g of its largest element %.3g", rule, k, d, d/scale, scale)
			}
			// Adam's first step moves each element by about lr·sign(g).
			a := official("after", string(rule), k)
			d = maxAbsDiff(runs[rule].after[k], a)
			worstAfter = math.Max(worstAfter, d/ref.LR)
			if d > 1e-3*ref.LR {
				t.Errorf("%s: %s after one step: max difference %.3g, %.2g of the learning rate", rule, k, d, d/ref.LR)
			}
		}
		t.Logf("%s: 12 gradients within %.2g of their largest element; tensors after the step within %.2g of the learning rate",
			rule, worstGrad, worstAfter)
	}

	// The change between the readings, against the official change.
	trunc, thr := runs[train.MaskTruncate], runs[train.MaskThreshold]
	gt, gh, wt, wh := terms(trunc), terms(thr), refTerms(train.MaskTruncate), refTerms(train.MaskThreshold)
	for i := range names {
		if names[i] == "image" {
			if gt[i] != gh[i] {
				t.Errorf("the image loss changed with the mask reading: %v, %v", gt[i], gh[i])
			}
			continue
		}
		dGo, dRef := gh[i]-gt[i], wh[i]-wt[i]
		t.Logf("threshold − truncate: %s %+.6g, official %+.6g (relative to the loss %.2g)", names[i], dGo, dRef, dRef/wt[i])
		if dRef == 0 || math.Signbit(dGo) != math.Signbit(dRef) || math.Abs(dGo-dRef) > 2e-3*math.Abs(dRef) {
			t.Errorf("threshold − truncate: %s changes by %+.6g, officially by %+.6g", names[i], dGo, dRef)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(trunc.grads)) {
		dGo, dRef := sub(thr.grads[k], trunc.grads[k]), sub(official("grad", "threshold", k), official("grad", "truncate", k))
		diff, size := maxAbsDiff(dGo, dRef), maxAbs(dRef)
		t.Logf("gradient of %s: threshold − truncate up to %.3g (%.2g of the gradient), differs from the official change by %.2g of it",
			k, size, size/maxAbs(official("grad", "truncate", k)), diff/size)
		if size == 0 || diff > 5e-3*size {
			t.Errorf("gradient of %s: the change between readings differs from the official change by %.3g of %.3g", k, diff, size)
		}
	}
}

func maxAbs(x []float32) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

func sub(a, b []float32) []float32 {
	out := make([]float32, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}
