package clip_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/dapobench/dapobench/clip"
)

// Build a tiny DAPO model directory and read back what a scheme needs
// from its model.json.
func ExampleBuildTiny() {
	dir, err := os.MkdirTemp("", "tiny-dapo")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := clip.BuildTiny(context.Background(), dir, 1, clip.Options{Variant: clip.DAPO, ImageSize: 48}); err != nil {
		log.Fatal(err)
	}
	m, err := clip.ReadManifest(dir)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Variant, m.ImageSize, m.Grid, m.FeatureLayers)
	fmt.Println("patch tokens:", m.PatchTokens, "with CLS:", m.PatchCLS)
	fmt.Println("prompt inputs:", m.VisualPromptDepth, m.TextPromptDepth, m.PromptTokens)
	// Output:
	// dapo 48 6 [1 2 3 4]
	// patch tokens: 36 with CLS: false
	// prompt inputs: 4 4 4
}

func ExamplePreset() {
	a, err := clip.Preset("ViT-L-14-336")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.VisionWidth, a.VisionLayers, a.Act, a.Grid(518))
	fmt.Println(clip.DefaultFeatureLayers(clip.DAPO, a.VisionLayers), clip.DPAMLayers(a.VisionLayers))
	// Output:
	// 1024 24 quick_gelu 37
	// [6 12 18 24] 19
}
