package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/internal/cli"
)

// runCLI runs the command in-process and returns what it printed.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), err
}

func genFixtures(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, _, err := runCLI(t, "fixtures", "gen", "--out", dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDatasetsScanJSON(t *testing.T) {
	dir := genFixtures(t)
	out, _, err := runCLI(t, "datasets", "scan", "--dataset", "mpdd", "--root", filepath.Join(dir, "mpdd"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	// The whole JSON document of datasets scan --json, compared exactly.
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"dataset": "mpdd",
		"categories": map[string]any{
			"bracket_brown": map[string]any{
				"train":        map[string]any{"normal": 4.0, "anomalous": 0.0},
				"test":         map[string]any{"normal": 3.0, "anomalous": 4.0},
				"defect_types": map[string]any{"bend_and_parts_mismatch": 2.0, "parts_mismatch": 2.0},
			},
			"tubes": map[string]any{
				"train":        map[string]any{"normal": 4.0, "anomalous": 0.0},
				"test":         map[string]any{"normal": 3.0, "anomalous": 3.0},
				"defect_types": map[string]any{"flattening": 3.0},
			},
		},
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if !bytes.Equal(a, b) {
		t.Errorf("got  %s\nwant %s", a, b)
	}
}

func TestDatasetsScanTable(t *testing.T) {
	dir := genFixtures(t)
	out, _, err := runCLI(t, "datasets", "scan", "--dataset", "mad-sim", "--root", filepath.Join(dir, "mad-sim"), "--category", "01Gorilla")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"01Gorilla", "Burrs 11, Missing 2, Stains 2", "total"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestDatasetsScanBadInput(t *testing.T) {
	dir := genFixtures(t)
	root := filepath.Join(dir, "mvtec")
	os.Remove(filepath.Join(root, "bottle/ground_truth/broken_large/001_mask.png"))
	_, _, err := runCLI(t, "datasets", "scan", "--dataset", "mvtec", "--root", root)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("err %v, exit %d", err, exitCode(err))
	}
	if !strings.Contains(err.Error(), "mvtec: bottle: test: bottle/test/broken_large/001.png: missing mask") {
		t.Errorf("error: %v", err)
	}
	_, _, err = runCLI(t, "datasets", "scan", "--dataset", "mvtec")
	if !errors.Is(err, cli.ErrUsage) || exitCode(err) != 2 {
		t.Errorf("missing --root: %v", err)
	}
	_, _, err = runCLI(t, "datasets", "scan", "--dataset", "mvtech", "--root", root)
	if err == nil || !strings.Contains(err.Error(), "valid: mvtec, visa, mpdd, mad-sim, mad-real, real-iad") {
		t.Errorf("unknown dataset: %v", err)
	}
}

func TestDatasetsMeta(t *testing.T) {
	dir := genFixtures(t)
	out := filepath.Join(t.TempDir(), "meta.json")
	if _, _, err := runCLI(t, "datasets", "meta", "--dataset", "mvtec", "--root", filepath.Join(dir, "mvtec"), "--out", out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// The reference generators' format: 4-space indent, trailing newline.
	if !strings.HasPrefix(string(b), "{\n    \"train\": {\n        \"bottle\": [\n            {\n                \"img_path\": \"bottle/train/good/000.png\",") || !strings.HasSuffix(string(b), "}\n") {
		t.Errorf("meta.json starts %q", string(b[:min(200, len(b))]))
	}
	// It reads back through --meta with the same counts.
	a, _, err := runCLI(t, "datasets", "scan", "--dataset", "mvtec", "--root", filepath.Join(dir, "mvtec"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := runCLI(t, "datasets", "scan", "--dataset", "mvtec", "--root", filepath.Join(dir, "mvtec"), "--meta", out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if a != m {
		t.Errorf("scan via meta.json differs:\n%s\n%s", a, m)
	}
}

func TestFixturesGen(t *testing.T) {
	dir := t.TempDir()
	out, _, err := runCLI(t, "fixtures", "gen", "--out", dir, "--seed", "7")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "seed 7") {
		t.Errorf("output: %s", out)
	}
	// Deterministic for a seed: a second tree has identical bytes.
	dir2 := t.TempDir()
	if _, _, err := runCLI(t, "fixtures", "gen", "--out", dir2, "--seed", "7"); err != nil {
		t.Fatal(err)
	}
	for _, id := range fixtures.IDs {
		filepath.Walk(filepath.Join(dir, id), func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			a, _ := os.ReadFile(p)
			b, err := os.ReadFile(filepath.Join(dir2, rel))
			if err != nil || !bytes.Equal(a, b) {
				t.Errorf("%s differs between two runs with the same seed", rel)
			}
			return nil
		})
	}
	// It never writes into a dataset folder that has content.
	if _, _, err := runCLI(t, "fixtures", "gen", "--out", dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second run into the same folder: %v", err)
	}
}

func TestUsage(t *testing.T) {
	out, _, err := runCLI(t, "--help")
	if err != nil || !strings.Contains(out, "datasets scan") {
		t.Errorf("help: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, "nonsense"); !errors.Is(err, cli.ErrUsage) {
		t.Errorf("unknown command: %v", err)
	}
	if _, _, err := runCLI(t, "datasets", "scan", "-h"); err != nil {
		t.Errorf("-h: %v", err)
	}
}
