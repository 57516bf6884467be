package checkpoints_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
)

// Importing an AnomalyCLIP checkpoint for a model directory, storing the
// canonical tensors beside it and reading them back.
func ExampleImport() {
	tmp, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	model := filepath.Join(tmp, "model")
	if _, err := clip.BuildTiny(context.Background(), model, 1, clip.Options{Variant: clip.AnomalyCLIP}); err != nil {
		log.Fatal(err)
	}
	m, err := clip.ReadManifest(model)
	if err != nil {
		log.Fatal(err)
	}
	l, err := checkpoints.Import("testdata/anomalyclip.pth", checkpoints.AnomalyCLIP, m)
	if err != nil {
		log.Fatal(err)
	}
	out := filepath.Join(model, "learned.safetensors")
	if err := l.WriteFile(out); err != nil {
		log.Fatal(err)
	}
	back, err := checkpoints.ReadFile(out)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(back.Scheme, back.Trained, back.Source)
	for _, name := range back.Names() {
		fmt.Println(name, back.Tensors[name].Shape)
	}
	// Output:
	// anomalyclip true anomalyclip.pth
	// abnormal_ctx [12 32]
	// normal_ctx [12 32]
	// text_deep [3 4 32]
}

// Without a checkpoint a scheme runs on its seeded initial tensors, which
// say that they are untrained. A nil model means the official ViT-L sizes.
func ExampleUntrained() {
	l, err := checkpoints.Untrained(checkpoints.AnomalyCLIP, nil, clip.Tensor{}, 7)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Label())
	for _, name := range l.Names() {
		fmt.Println(name, l.Tensors[name].Shape)
	}
	// Output:
	// untrained (seed 7)
	// abnormal_ctx [12 768]
	// normal_ctx [12 768]
	// text_deep [8 4 768]
}
