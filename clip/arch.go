// Package clip holds the CLIP architectures, weight import and the ONNX
// graph builder for the image and text towers of every variant the harness
// evaluates (plain CLIP, AnomalyCLIP, DAPO, WinCLIP), following
// docs/methods.md#clip-variants, quirks included.
package clip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Act is the MLP activation of the transformer blocks.
type Act string

// The two activations CLIP models use.
const (
	// QuickGELU is x·sigmoid(1.702x), the activation OpenAI trained with.
	QuickGELU Act = "quick_gelu"
	// GELU is the exact erf GELU (open_clip non-quickgelu configs,
	// ViT-B-16-plus-240, and APRIL-GAN's rebuilt ViT-L;
	// docs/methods.md#clip-activation, docs/methods.md#aprilgan-gelu).
	GELU Act = "gelu"
)

// quickGELUScale is QuickGELU's constant.
const quickGELUScale = 1.702

// layerNormEps is torch.nn.LayerNorm's default, used by every CLIP block.
const layerNormEps = 1e-5

// Arch is a CLIP ViT architecture. Its JSON form has exactly these fields.
type Arch struct {
	Name          string `json:"name"`
	ImageSize     int    `json:"image_size"`
	PatchSize     int    `json:"patch_size"`
	VisionWidth   int    `json:"vision_width"`
	VisionLayers  int    `json:"vision_layers"`
	VisionHeads   int    `json:"vision_heads"`
	TextWidth     int    `json:"text_width"`
	TextLayers    int    `json:"text_layers"`
	TextHeads     int    `json:"text_heads"`
	ContextLength int    `json:"context_length"`
	VocabSize     int    `json:"vocab_size"`
	EmbedDim      int    `json:"embed_dim"`
	Act           Act    `json:"act"`
}

// presets are the architectures the methods use
// (docs/methods.md#clip-backbones).
var presets = map[string]Arch{
	// OpenAI ViT-L/14@336px: DAPO, AnomalyCLIP, APRIL-GAN, MultiADS.
	"ViT-L-14-336": {
		Name: "ViT-L-14-336", ImageSize: 336, PatchSize: 14,
		VisionWidth: 1024, VisionLayers: 24, VisionHeads: 16,
		TextWidth: 768, TextLayers: 12, TextHeads: 12,
		ContextLength: 77, VocabSize: 49408, EmbedDim: 768, Act: QuickGELU,
	},
	// OpenCLIP ViT-B-16-plus-240 (laion400m): WinCLIP.
	"ViT-B-16-plus-240": {
		Name: "ViT-B-16-plus-240", ImageSize: 240, PatchSize: 16,
		VisionWidth: 896, VisionLayers: 12, VisionHeads: 14,
		TextWidth: 640, TextLayers: 12, TextHeads: 10,
		ContextLength: 77, VocabSize: 49408, EmbedDim: 640, Act: GELU,
	},
}

// Preset returns a named architecture.
func Preset(name string) (Arch, error) {
	a, ok := presets[name]
	if !ok {
		return Arch{}, fmt.Errorf("clip: unknown architecture %q (presets: %s)", name, strings.Join(PresetNames(), ", "))
	}
	return a, nil
}

// PresetNames lists the preset architectures.
func PresetNames() []string {
	var names []string
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ArchFrom returns the architecture a command names, a preset's or an
// architecture JSON file's, so that every command reads --arch and
// --arch-config alike. ok is false when neither is given; both is an
// error.
func ArchFrom(preset, file string) (a Arch, ok bool, err error) {
	switch {
	case preset != "" && file != "":
		return a, false, fmt.Errorf("clip: give a preset or an architecture file, not both")
	case preset != "":
		a, err = Preset(preset)
	case file != "":
		a, err = ReadArch(file)
	default:
		return a, false, nil
	}
	return a, err == nil, err
}

// ParseArch decodes an architecture JSON config; unknown fields are an
// error so that a misspelt field is not silently ignored.
func ParseArch(data []byte) (Arch, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var a Arch
	if err := dec.Decode(&a); err != nil {
		return Arch{}, fmt.Errorf("clip: architecture config: %w", err)
	}
	if err := a.Validate(); err != nil {
		return Arch{}, err
	}
	return a, nil
}

// ReadArch reads an architecture JSON config file.
func ReadArch(path string) (Arch, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Arch{}, fmt.Errorf("clip: %w", err)
	}
	a, err := ParseArch(data)
	if err != nil {
		return Arch{}, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Validate reports the first inconsistent field.
func (a Arch) Validate() error {
	pos := []struct {
		name string
		v    int
	}{
		{"image_size", a.ImageSize}, {"patch_size", a.PatchSize}, {"vision_width", a.VisionWidth},
		{"vision_layers", a.VisionLayers}, {"vision_heads", a.VisionHeads}, {"text_width", a.TextWidth},
		{"text_layers", a.TextLayers}, {"text_heads", a.TextHeads}, {"context_length", a.ContextLength},
		{"vocab_size", a.VocabSize}, {"embed_dim", a.EmbedDim},
	}
	for _, p := range pos {
		if p.v <= 0 || p.v > 1<<20 {
			return fmt.Errorf("clip: architecture %q: %s = %d, want a positive size", a.Name, p.name, p.v)
		}
	}
	if a.Name == "" {
		return fmt.Errorf("clip: architecture: name is empty")
	}
	if a.ImageSize < a.PatchSize {
		return fmt.Errorf("clip: architecture %q: image_size %d smaller than patch_size %d", a.Name, a.ImageSize, a.PatchSize)
	}
	if a.VisionWidth%a.VisionHeads != 0 {
		return fmt.Errorf("clip: architecture %q: vision_width %d not divisible by vision_heads %d", a.Name, a.VisionWidth, a.VisionHeads)
	}
	if a.TextWidth%a.TextHeads != 0 {
		return fmt.Errorf("clip: architecture %q: text_width %d not divisible by text_heads %d", a.Name, a.TextWidth, a.TextHeads)
	}
	if a.Act != QuickGELU && a.Act != GELU {
		return fmt.Errorf("clip: architecture %q: act %q, want %q or %q", a.Name, a.Act, QuickGELU, GELU)
	}
	return nil
}

// Grid is the patch grid side at image size s (conv stride = patch).
func (a Arch) Grid(s int) int { return s / a.PatchSize }
