// Package loaders reads the anomaly-detection benchmarks (MVTec-AD, VisA,
// MPDD, MAD-Sim, MAD-Real, Real-IAD) in their real on-disk layouts and turns
// them into one list of Samples.
//
// A loader validates while it reads: a missing mask, a mask without an image,
// a malformed split file or a path that escapes the root is an error naming
// the dataset, category, split and file. Nothing is skipped silently. Image
// sizes are read from file headers, never by decoding whole images.
package loaders

// Sample is one image of a benchmark with its label and ground truth.
type Sample struct {
	Dataset      string // dataset id: mvtec, visa, mpdd, mad-sim, mad-real, real-iad
	Category     string // exact on-disk folder name (01Gorilla, pcb1, audiojack)
	CategoryName string // name used in prompts (Gorilla); equals Category elsewhere
	Split        string // "train" or "test"
	Label        int    // 0 normal, 1 anomalous
	DefectType   string // raw defect token ("" for normal samples and where unknown)
	ImagePath    string // absolute, cleaned
	MaskPath     string // absolute, cleaned; "" when the sample has no mask
	RelImage     string // root-relative, '/'-separated, as meta.json holds it
	RelMask      string // root-relative, '/'-separated; "" when none
	View         string // Real-IAD camera C1..C5; "" elsewhere
	SampleKey    string // groups the views of one Real-IAD sample; RelImage elsewhere
	Width        int    // image width from the file header
	Height       int    // image height from the file header
	Provenance   string // where the sample was declared: split file and row, or directory
}

// Splits are the split names a Sample can have.
const (
	Train = "train"
	Test  = "test"
)
