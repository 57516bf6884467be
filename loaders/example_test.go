package loaders_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dapobench/dapobench/fixtures"
	"github.com/dapobench/dapobench/loaders"
)

func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	fixtures.Generate(context.Background(), dir, fixtures.DefaultSeed)

	set, err := loaders.Load(context.Background(), "mad-sim", loaders.Options{Root: filepath.Join(dir, "mad-sim")})
	if err != nil {
		fmt.Println(err)
		return
	}
	for c, s := range loaders.Summarize(set).Categories {
		if c == "13Pheonix" {
			fmt.Printf("%s: train %d normal; test %d normal, %d anomalous %v\n", c, s.Train.Normal, s.Test.Normal, s.Test.Anomalous, s.DefectTypes)
		}
	}
	// Output:
	// 13Pheonix: train 4 normal; test 2 normal, 3 anomalous map[Stains:3]
}

func ExampleReadMask() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	fixtures.Generate(context.Background(), dir, fixtures.DefaultSeed)

	// Raw VisA masks hold defect class ids; ReadMask binarises any non-zero.
	m, st, _ := loaders.ReadMaskStats(filepath.Join(dir, "visa/candle/Data/Masks/Anomaly/002.png"))
	n := 0
	for _, v := range m.Pix {
		n += int(v)
	}
	fmt.Printf("%dx%d, raw values %v, binary=%v, %d defect pixels\n", m.Width, m.Height, st.Values, st.Binary, n)
	// Output:
	// 64x48, raw values [0 1 3], binary=false, 153 defect pixels
}
