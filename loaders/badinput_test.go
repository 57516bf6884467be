package loaders_test

import (
	"context"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/budget/budgettest"
	"github.com/dapobench/dapobench/loaders"
)

// Each case breaks a copy of a fixture tree the way
// docs/data.md#loaders-validation lists
// and checks the kind of error and that its message names the dataset,
// category, split and file.
func TestBadInput(t *testing.T) {
	const (
		candleAnomaly = "candle/Data/Images/Anomaly/000.JPG"
		candleMask    = "candle/Data/Masks/Anomaly/000.png"
		bxC1          = "realiad_256/audiojack/NG/BX/S0001/audiojack__0001_NG_BX_C1_20231010090201"
	)
	cases := []struct {
		name   string
		id     string
		opt    loaders.Options
		break_ func(t *testing.T, root string)
		kind   error
		want   []string // substrings of the error message
	}{
		{
			name:   "missing mask mvtec",
			id:     "mvtec",
			break_: func(t *testing.T, r string) { rm(t, r, "bottle/ground_truth/broken_large/001_mask.png") },
			kind:   loaders.ErrMissingMask,
			want:   []string{"mvtec: bottle: test: bottle/test/broken_large/001.png: missing mask", "expected bottle/ground_truth/broken_large/001_mask.png"},
		},
		{
			name:   "missing mask visa",
			id:     "visa",
			break_: func(t *testing.T, r string) { rm(t, r, candleMask) },
			kind:   loaders.ErrMissingMask,
			want:   []string{"visa: candle: test: " + candleAnomaly, "expected " + candleMask},
		},
		{
			name:   "missing mask real-iad",
			id:     "real-iad",
			break_: func(t *testing.T, r string) { rm(t, r, bxC1+".png") },
			kind:   loaders.ErrMissingMask,
			want:   []string{"real-iad: audiojack: test: " + bxC1 + ".jpg", "expected " + bxC1 + ".png"},
		},
		{
			name: "visa anomaly row without mask",
			id:   "visa",
			break_: func(t *testing.T, r string) {
				edit(t, r, "split_csv/1cls.csv", ","+candleAnomaly+","+candleMask, ","+candleAnomaly+",")
			},
			kind: loaders.ErrNoMask,
			want: []string{"visa: candle: test: split_csv/1cls.csv:", "anomalous sample has no mask"},
		},
		{
			name: "real-iad NG record with null mask",
			id:   "real-iad",
			break_: func(t *testing.T, r string) {
				edit(t, r, "realiad_jsons/audiojack.json", `"mask_path": "NG/BX/S0001/audiojack__0001_NG_BX_C1_20231010090201.png"`, `"mask_path": null`)
			},
			kind: loaders.ErrNoMask,
			want: []string{"real-iad: audiojack: test: realiad_jsons/audiojack.json", "anomaly_class BX, mask_path null"},
		},
		{
			name: "orphan mask",
			id:   "mvtec",
			break_: func(t *testing.T, r string) {
				cp(t, r, "bottle/ground_truth/broken_large/000_mask.png", "bottle/ground_truth/broken_large/005_mask.png")
			},
			kind: loaders.ErrOrphanMask,
			want: []string{"mvtec: bottle: test: bottle/ground_truth/broken_large/005_mask.png: mask without image"},
		},
		{
			name: "orphan mask folder",
			id:   "mpdd",
			break_: func(t *testing.T, r string) {
				cp(t, r, "tubes/ground_truth/flattening/000_mask.png", "tubes/ground_truth/dent/000_mask.png")
			},
			kind: loaders.ErrOrphanMask,
			want: []string{"mpdd: tubes: test: tubes/ground_truth/dent/000_mask.png: mask without image"},
		},
		{
			name: "mask size swapped",
			id:   "mvtec",
			break_: func(t *testing.T, r string) {
				writeGray(t, r, "bottle/ground_truth/contamination/000_mask.png", 48, 64, 255)
			},
			kind: loaders.ErrSizeMismatch,
			want: []string{"mvtec: bottle: test: bottle/ground_truth/contamination/000_mask.png", "mask size 48x64 != image size 64x48"},
		},
		{
			name:   "mask one row short",
			id:     "mad-real",
			break_: func(t *testing.T, r string) { writeGray(t, r, "Bear/ground_truth/Stains/10.png", 64, 47, 255) },
			kind:   loaders.ErrSizeMismatch,
			want:   []string{"mad-real: Bear: test: Bear/ground_truth/Stains/10.png", "mask size 64x47 != image size 64x48"},
		},
		{
			name: "unknown category requested",
			id:   "mvtec",
			opt:  loaders.Options{Category: "bottel"},
			kind: loaders.ErrUnknownCategory,
			want: []string{"mvtec: bottel: unknown category; valid: bottle, cable, capsule, carpet, grid, hazelnut, leather, metal_nut, pill, screw, tile, toothbrush, transistor, wood, zipper"},
		},
		{
			name: "mad-sim name without prefix",
			id:   "mad-sim",
			opt:  loaders.Options{Category: "Gorilla"},
			kind: loaders.ErrUnknownCategory,
			want: []string{"mad-sim: Gorilla: unknown category; valid: 01Gorilla, 02Unicorn"},
		},
		{
			name: "old anomalib real-iad name",
			id:   "real-iad",
			opt:  loaders.Options{Category: "capacitor"},
			kind: loaders.ErrUnknownCategory,
			want: []string{"real-iad: capacitor: unknown category; valid: audiojack, bottle_cap"},
		},
		{
			name:   "unknown category folder",
			id:     "mvtec",
			break_: func(t *testing.T, r string) { mkdir(t, r, "bottel/train/good") },
			kind:   loaders.ErrUnknownCategory,
			want:   []string{"mvtec: bottel: bottel: unknown category; valid: bottle"},
		},
		{
			name: "truncated png",
			id:   "mvtec",
			break_: func(t *testing.T, r string) {
				truncate(t, r, "hazelnut/test/hole/001.png", 200)
			},
			kind: loaders.ErrCorruptImage,
			want: []string{"mvtec: hazelnut: test: hazelnut/test/hole/001.png: cannot decode image"},
		},
		{
			name:   "zero-byte image",
			id:     "mad-sim",
			break_: func(t *testing.T, r string) { write(t, r, "01Gorilla/train/good/10.png", "") },
			kind:   loaders.ErrCorruptImage,
			want:   []string{"mad-sim: 01Gorilla: train: 01Gorilla/train/good/10.png: cannot decode image: empty file"},
		},
		{
			name: "text saved as JPG",
			id:   "visa",
			break_: func(t *testing.T, r string) {
				write(t, r, "capsules/Data/Images/Normal/001.JPG", "this is not a JPEG\n")
			},
			kind: loaders.ErrCorruptImage,
			want: []string{"visa: capsules: train: capsules/Data/Images/Normal/001.JPG: cannot decode image"},
		},
		{
			name:   "truncated jpeg",
			id:     "real-iad",
			break_: func(t *testing.T, r string) { truncate(t, r, bxC1+".jpg", 400) },
			kind:   loaders.ErrCorruptImage,
			want:   []string{"real-iad: audiojack: test: " + bxC1 + ".jpg: cannot decode image"},
		},
		{
			name:   "missing split file visa",
			id:     "visa",
			break_: func(t *testing.T, r string) { rm(t, r, "split_csv/1cls.csv") },
			kind:   loaders.ErrSplitFileNotFound,
			want:   []string{"visa: split_csv/1cls.csv: split file not found"},
		},
		{
			name:   "real-iad category without JSON",
			id:     "real-iad",
			opt:    loaders.Options{Category: "toy_brick"},
			break_: func(t *testing.T, r string) { rm(t, r, "realiad_jsons/toy_brick.json") },
			kind:   loaders.ErrSplitFileNotFound,
			want:   []string{"real-iad: toy_brick: realiad_jsons/toy_brick.json: split file not found"},
		},
		{
			name: "real-iad unknown JSON set",
			id:   "real-iad",
			opt:  loaders.Options{Protocol: "realiad_jsons_fuiad_0.3"},
			kind: loaders.ErrSplitFileNotFound,
			want: []string{"real-iad: realiad_jsons_fuiad_0.3: split file not found: JSON set folder not found"},
		},
		{
			name: "empty train folder",
			id:   "mpdd",
			break_: func(t *testing.T, r string) {
				for _, f := range []string{"000", "001", "002", "003"} {
					rm(t, r, "tubes/train/good/"+f+".png")
				}
			},
			kind: loaders.ErrEmptySplit,
			want: []string{"mpdd: tubes: train: tubes/train/good: empty split"},
		},
		{
			name: "real-iad empty train list",
			id:   "real-iad",
			break_: func(t *testing.T, r string) {
				re := regexp.MustCompile(`(?s)"train": \[.*?\n    \]`)
				editRe(t, r, "realiad_jsons/toy_brick.json", re, `"train": []`)
			},
			kind: loaders.ErrEmptySplit,
			want: []string{"real-iad: toy_brick: train: realiad_jsons/toy_brick.json: empty split"},
		},
		{
			name: "visa csv without rows for category",
			id:   "visa",
			opt:  loaders.Options{Category: "capsules"},
			break_: func(t *testing.T, r string) {
				dropLines(t, r, "split_csv/1cls.csv", "capsules,")
			},
			kind: loaders.ErrEmptySplit,
			want: []string{"visa: capsules: split_csv/1cls.csv: empty split"},
		},
		{
			name: "visa header differs",
			id:   "visa",
			break_: func(t *testing.T, r string) {
				edit(t, r, "split_csv/1cls.csv", "object,split,label,image,mask", "object,split,label,image,mask_path")
			},
			kind: loaders.ErrInvalidMetadata,
			want: []string{"visa: split_csv/1cls.csv:1: invalid metadata: header"},
		},
		{
			name: "visa wrong column count",
			id:   "visa",
			break_: func(t *testing.T, r string) {
				edit(t, r, "split_csv/1cls.csv", ","+candleAnomaly+",", ","+candleAnomaly+",x,")
			},
			kind: loaders.ErrInvalidMetadata,
			want: []string{"visa: split_csv/1cls.csv:", "wrong number of fields"},
		},
		{
			name: "visa unknown label token",
			id:   "visa",
			break_: func(t *testing.T, r string) {
				edit(t, r, "split_csv/1cls.csv", "test,anomaly,"+candleAnomaly, "test,defect,"+candleAnomaly)
			},
			kind: loaders.ErrInvalidMetadata,
			want: []string{"visa: split_csv/1cls.csv:", `label "defect", want normal or anomaly`},
		},
		{
			name: "visa unknown split token",
			id:   "visa",
			break_: func(t *testing.T, r string) {
				edit(t, r, "split_csv/1cls.csv", "test,anomaly,"+candleAnomaly, "val,anomaly,"+candleAnomaly)
			},
			kind: loaders.ErrInvalidMetadata,
			want: []string{"visa: split_csv/1cls.csv:", `split "val", want train or test`},
		},
		{
			name:   "real-iad missing meta",
			id:     "real-iad",
			break_: func(t *testing.T, r string) { edit(t, r, "realiad_jsons/toy_brick.json", `"meta"`, `"info"`) },
			kind:   loaders.ErrInvalidMetadata,
			want:   []string{"real-iad: toy_brick: realiad_jsons/toy_brick.json: invalid metadata: missing top-level key \"meta\""},
		},
		{
			name: "real-iad record with extra key",
			id:   "real-iad",
			break_: func(t *testing.T, r string) {
				edit(t, r, "realiad_jsons/toy_brick.json", `"anomaly_class": "AK",`, `"anomaly_class": "AK", "view": "C1",`)
			},
			kind: loaders.ErrInvalidMetadata,
			want: []string{"real-iad: toy_brick: test: realiad_jsons/toy_brick.json: invalid metadata: test[", "record keys"},
		},
		{
			name: "real-iad unknown anomaly class",
			id:   "real-iad",
			break_: func(t *testing.T, r string) {
				edit(t, r, "realiad_jsons/toy_brick.json", `"anomaly_class": "AK"`, `"anomaly_class": "XX"`)
			},
			kind: loaders.ErrInvalidMetadata,
			want: []string{"real-iad: toy_brick: test: realiad_jsons/toy_brick.json", `unknown anomaly_class "XX"`},
		},
		{
			name: "visa path escapes root",
			id:   "visa",
			break_: func(t *testing.T, r string) {
				edit(t, r, "split_csv/1cls.csv", ","+candleAnomaly+",", ",candle/../../outside.JPG,")
			},
			kind: loaders.ErrPathEscape,
			want: []string{"visa: candle: test: split_csv/1cls.csv:", `path escapes dataset root: image "candle/../../outside.JPG"`},
		},
		{
			name: "real-iad absolute path",
			id:   "real-iad",
			break_: func(t *testing.T, r string) {
				edit(t, r, "realiad_jsons/toy_brick.json", `"image_path": "NG/AK/`, `"image_path": "/etc/NG/AK/`)
			},
			kind: loaders.ErrPathEscape,
			want: []string{"real-iad: toy_brick: test: realiad_jsons/toy_brick.json", "path escapes dataset root"},
		},
		{
			name: "visa duplicate row",
			id:   "visa",
			break_: func(t *testing.T, r string) {
				appendText(t, r, "split_csv/1cls.csv", "candle,test,anomaly,"+candleAnomaly+","+candleMask+"\r\n")
			},
			kind: loaders.ErrDuplicate,
			want: []string{"visa: candle: test: split_csv/1cls.csv:", "duplicate sample: " + candleAnomaly + " also listed at split_csv/1cls.csv:"},
		},
		{
			name: "real-iad duplicate record",
			id:   "real-iad",
			break_: func(t *testing.T, r string) {
				edit(t, r, "realiad_jsons/toy_brick.json", `"OK/S0259/toy_brick_0259_OK_C2_`, `"OK/S0259/toy_brick_0259_OK_C1_`)
			},
			kind: loaders.ErrDuplicate,
			want: []string{"real-iad: toy_brick: train: realiad_jsons/toy_brick.json:train[", "duplicate sample"},
		},
		{
			name: "visa normal label on an anomaly image",
			id:   "visa",
			break_: func(t *testing.T, r string) {
				edit(t, r, "split_csv/1cls.csv", "test,anomaly,"+candleAnomaly+","+candleMask, "test,normal,"+candleAnomaly+",")
			},
			kind: loaders.ErrLabelConflict,
			want: []string{"visa: candle: test: split_csv/1cls.csv:", "label contradicts path: label normal for " + candleAnomaly},
		},
		{
			name:   "non-binary mvtec mask (deep)",
			id:     "mvtec",
			opt:    loaders.Options{Deep: true},
			break_: func(t *testing.T, r string) { writeGray(t, r, "grid/ground_truth/broken/001_mask.png", 64, 48, 128) },
			kind:   loaders.ErrNonBinaryMask,
			want:   []string{"mvtec: grid: test: grid/ground_truth/broken/001_mask.png: mask is not binary: values {0,128}"},
		},
		{
			name:   "normal sample with non-empty mask",
			id:     "mad-sim",
			break_: func(t *testing.T, r string) { writeGray(t, r, "01Gorilla/ground_truth/good/0_mask.png", 64, 48, 255) },
			kind:   loaders.ErrNormalMaskNotEmpty,
			want:   []string{"mad-sim: 01Gorilla: test: 01Gorilla/ground_truth/good/0_mask.png: normal sample has a non-empty mask"},
		},
		{
			name:   "unexpected image extension",
			id:     "mvtec",
			break_: func(t *testing.T, r string) { cp(t, r, "bottle/test/good/000.png", "bottle/test/good/004.PNG") },
			kind:   loaders.ErrLayout,
			want:   []string{"mvtec: bottle: test: bottle/test/good/004.PNG: unexpected dataset layout: unexpected file (images are .png)"},
		},
		// Decompression bombs: a few dozen bytes declaring 10^10 pixels
		// (internal/budget/testdata). The header check refuses them in a
		// plain scan already; no decoder allocates what they declare.
		{
			name:   "image bomb",
			id:     "mvtec",
			break_: func(t *testing.T, r string) { bomb(t, r, "bottle/test/good/000.png", "gray.png") },
			kind:   loaders.ErrTooLarge,
			want:   []string{"mvtec: bottle: test: bottle/test/good/000.png: image too large", "100000×100000", "DAPOBENCH_MAX_PIXELS"},
		},
		{
			name:   "image bomb deep",
			id:     "mvtec",
			opt:    loaders.Options{Deep: true},
			break_: func(t *testing.T, r string) { bomb(t, r, "bottle/test/good/000.png", "gray.png") },
			kind:   loaders.ErrTooLarge,
			want:   []string{"mvtec: bottle: test: bottle/test/good/000.png: image too large"},
		},
		{
			name:   "jpeg bomb",
			id:     "visa",
			break_: func(t *testing.T, r string) { bomb(t, r, candleAnomaly, "rgb.jpg") },
			kind:   loaders.ErrTooLarge,
			want:   []string{"visa: candle: test: " + candleAnomaly + ": image too large", "65000×65000"},
		},
		{
			name:   "rgb mask bomb of a normal sample",
			id:     "mad-sim",
			break_: func(t *testing.T, r string) { bomb(t, r, "01Gorilla/ground_truth/good/0_mask.png", "rgb.png") },
			kind:   loaders.ErrTooLarge,
			want:   []string{"mad-sim: 01Gorilla: test: 01Gorilla/ground_truth/good/0_mask.png: image too large"},
		},
		{
			name:   "class-id mask bomb",
			id:     "visa",
			opt:    loaders.Options{Deep: true},
			break_: func(t *testing.T, r string) { bomb(t, r, candleMask, "palette.png") },
			kind:   loaders.ErrTooLarge,
			want:   []string{"visa: candle: test: " + candleMask + ": image too large"},
		},
		{
			name:   "png too short for its size",
			id:     "mvtec",
			break_: func(t *testing.T, r string) { bomb(t, r, "bottle/ground_truth/broken_large/000_mask.png", "thin.png") },
			kind:   loaders.ErrCorruptImage,
			want:   []string{"mvtec: bottle: test: bottle/ground_truth/broken_large/000_mask.png", "a PNG of 69 bytes cannot hold 13000×13000 pixels"},
		},
		{
			name: "dangling category link",
			id:   "mvtec",
			break_: func(t *testing.T, r string) {
				os.RemoveAll(filepath.Join(r, "hazelnut"))
				symlink(t, filepath.Join(r, "..", "elsewhere", "hazelnut"), r, "hazelnut")
			},
			kind: loaders.ErrBadLink,
			want: []string{"mvtec: hazelnut: broken symbolic link: symbolic link to ", "elsewhere/hazelnut, which does not exist"},
		},
		{
			name: "looping links",
			id:   "mpdd",
			break_: func(t *testing.T, r string) {
				symlink(t, "b", r, "tubes/test/good/a.png")
				symlink(t, "a.png", r, "tubes/test/good/b")
			},
			kind: loaders.ErrBadLink,
			want: []string{"mpdd: tubes/test/good/a.png: broken symbolic link: symbolic link to b loops"},
		},
		{
			name:   "folder link to its own parent",
			id:     "mvtec",
			break_: func(t *testing.T, r string) { symlink(t, "..", r, "bottle/test/again") },
			kind:   loaders.ErrBadLink,
			want:   []string{"mvtec: bottle/test/again: broken symbolic link: symbolic link to .. loops (the folder contains the link)"},
		},
		// Options the dataset has no use for are refused, not ignored.
		{
			name: "protocol of a dataset with one split",
			id:   "mvtec",
			opt:  loaders.Options{Protocol: "2cls_fewshot"},
			kind: loaders.ErrOption,
			want: []string{"mvtec: the protocol option does not apply: mvtec has one split"},
		},
		{
			name: "resolution outside real-iad",
			id:   "visa",
			opt:  loaders.Options{Resolution: "512"},
			kind: loaders.ErrOption,
			want: []string{"visa: the resolution option does not apply"},
		},
		{
			name: "views outside real-iad",
			id:   "mad-real",
			opt:  loaders.Options{Views: []string{"C1"}},
			kind: loaders.ErrOption,
			want: []string{"mad-real: the views option does not apply"},
		},
		{
			name: "protocol beside a meta.json",
			id:   "visa",
			opt:  loaders.Options{Meta: "meta.json", Protocol: "1cls"},
			kind: loaders.ErrOption,
			want: []string{"visa: the protocol option does not apply with a meta.json"},
		},
		{
			name: "unknown visa protocol",
			id:   "visa",
			opt:  loaders.Options{Protocol: "3cls"},
			kind: loaders.ErrOption,
			want: []string{`visa: unknown protocol "3cls"; valid: 1cls, 2cls_fewshot, 2cls_highshot, prepared`},
		},
		{
			name: "unknown real-iad view",
			id:   "real-iad",
			opt:  loaders.Options{Views: []string{"C6"}},
			kind: loaders.ErrOption,
			want: []string{`real-iad: unknown view "C6"`},
		},
		{
			name:   "real-iad several resolutions",
			id:     "real-iad",
			break_: func(t *testing.T, r string) { mkdir(t, r, "realiad_512/audiojack") },
			kind:   loaders.ErrLayout,
			want:   []string{"several image folders (256, 512); choose one"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Cases that break nothing read the shared tree; the others
			// break a copy.
			shared, _ := fixtureTree(t)
			root := filepath.Join(shared, c.id)
			if c.break_ != nil {
				root = cloneTree(t, c.id)
				c.break_(t, root)
			}
			opt := c.opt
			opt.Root = root
			set, err := loaders.Load(context.Background(), c.id, opt)
			if err == nil {
				t.Fatalf("no error; loaded %d samples", len(set.Samples))
			}
			if !errors.Is(err, c.kind) {
				t.Errorf("error is not %v:\n%v", c.kind, err)
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

// bomb replaces a file of the tree with one of the crafted files of
// internal/budget/testdata.
func bomb(t *testing.T, root, rel, name string) {
	t.Helper()
	b, err := os.ReadFile(budgettest.Bomb(t, name))
	if err != nil {
		t.Fatal(err)
	}
	write(t, root, rel, string(b))
}

// symlink makes root/rel a symbolic link to target.
func symlink(t *testing.T, target, root, rel string) {
	t.Helper()
	mkdir(t, root, filepath.Dir(rel))
	if err := os.Symlink(target, filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}

// TestSymlinkedCategories assembles a dataset with ln -s, as one gathered
// from several disks: categories and single images that are links load
// exactly as the tree they point at.
func TestSymlinkedCategories(t *testing.T) {
	root := cloneTree(t, "mvtec")
	want, err := loaders.Load(context.Background(), "mvtec", loaders.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	for _, c := range []string{"bottle", "grid"} {
		if err := os.Rename(filepath.Join(root, c), filepath.Join(other, c)); err != nil {
			t.Fatal(err)
		}
		symlink(t, filepath.Join(other, c), root, c)
	}
	img := "hazelnut/test/good/000.png"
	if err := os.Rename(filepath.Join(root, img), filepath.Join(other, "000.png")); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join(other, "000.png"), root, img)
	got, err := loaders.Load(context.Background(), "mvtec", loaders.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Categories, want.Categories) || len(got.Samples) != len(want.Samples) {
		t.Fatalf("through links: categories %v, %d samples; the tree itself: %v, %d", got.Categories, len(got.Samples), want.Categories, len(want.Samples))
	}
	for i := range got.Samples {
		if got.Samples[i].RelImage != want.Samples[i].RelImage || got.Samples[i].RelMask != want.Samples[i].RelMask {
			t.Errorf("sample %d: %s, want %s", i, got.Samples[i].RelImage, want.Samples[i].RelImage)
		}
	}
}

func rm(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.Remove(filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, rel)
	mkdir(t, root, filepath.Dir(rel))
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cp(t *testing.T, root, from, to string) { t.Helper(); write(t, root, to, read(t, root, from)) }

func appendText(t *testing.T, root, rel, s string) {
	t.Helper()
	write(t, root, rel, read(t, root, rel)+s)
}

func edit(t *testing.T, root, rel, old, new string) {
	t.Helper()
	s := read(t, root, rel)
	if !strings.Contains(s, old) {
		t.Fatalf("%s does not contain %q", rel, old)
	}
	write(t, root, rel, strings.Replace(s, old, new, 1))
}

func editRe(t *testing.T, root, rel string, re *regexp.Regexp, new string) {
	t.Helper()
	s := read(t, root, rel)
	if !re.MatchString(s) {
		t.Fatalf("%s does not match %v", rel, re)
	}
	write(t, root, rel, re.ReplaceAllLiteralString(s, new))
}

func dropLines(t *testing.T, root, rel, prefix string) {
	t.Helper()
	var keep []string
	for _, l := range strings.SplitAfter(read(t, root, rel), "\n") {
		if !strings.HasPrefix(l, prefix) {
			keep = append(keep, l)
		}
	}
	write(t, root, rel, strings.Join(keep, ""))
}

func truncate(t *testing.T, root, rel string, n int) {
	t.Helper()
	if err := os.Truncate(filepath.Join(root, rel), int64(n)); err != nil {
		t.Fatal(err)
	}
}

// writeGray writes a w×h mask whose centre pixel has value v.
func writeGray(t *testing.T, root, rel string, w, h int, v uint8) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	img.Pix[(h/2)*w+w/2] = v
	f, err := os.Create(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// TestCheckOutside refuses outputs inside the dataset root, directly, as
// the root itself, or through a symbolic link, and accepts one beside it.
func TestCheckOutside(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "mvtec")
	mkdir(t, root, "bottle")
	symlink(t, filepath.Join(root, "bottle"), dir, "link")
	for _, out := range []string{filepath.Join(root, "runs", "x"), root, filepath.Join(root, "bottle", "results.json"), filepath.Join(dir, "link", "run")} {
		if err := loaders.CheckOutside(root, out); !errors.Is(err, loaders.ErrOption) || !strings.Contains(err.Error(), "inside the dataset root") {
			t.Errorf("%s: %v", out, err)
		}
	}
	for _, out := range []string{filepath.Join(dir, "runs", "x"), filepath.Join(dir, "mvtec-run")} {
		if err := loaders.CheckOutside(root, out); err != nil {
			t.Errorf("%s: %v", out, err)
		}
	}
}

// TestLookup: every id IDs lists resolves, and an unknown one names them.
func TestLookup(t *testing.T) {
	ids := loaders.IDs()
	if len(ids) != len(loaders.Datasets()) {
		t.Fatalf("IDs %v", ids)
	}
	for _, id := range ids {
		if d, err := loaders.Lookup(id); err != nil || d.ID != id {
			t.Errorf("%s: %v", id, err)
		}
	}
	_, err := loaders.Lookup("mvtec-ad")
	if !errors.Is(err, loaders.ErrUnknownDataset) || !strings.Contains(err.Error(), strings.Join(ids, ", ")) {
		t.Errorf("unknown dataset: %v", err)
	}
}
