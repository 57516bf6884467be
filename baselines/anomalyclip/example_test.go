package anomalyclip_test

import (
	"fmt"

	"github.com/dapobench/dapobench/baselines/anomalyclip"
	"github.com/dapobench/dapobench/clip/tokenizer"
)

func ExampleTexts() {
	tk, err := tokenizer.New()
	if err != nil {
		panic(err)
	}
	for _, text := range anomalyclip.Texts() {
		ids, err := tk.Tokenize(text, false)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%q: end of text at %d\n", text, tokenizer.EOTIndex(ids))
	}
	// Output:
	// "X X X X X X X X X X X X object.": end of text at 15
	// "X X X X X X X X X X X X damaged object.": end of text at 16
}

func ExampleParse() {
	for _, v := range anomalyclip.Variants() {
		fmt.Println(v.Name)
	}
	o, err := anomalyclip.Parse("anomalyclip/layers-12-24", anomalyclip.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(o.Name, o.Layers)
	// Output:
	// anomalyclip
	// anomalyclip/no-smoothing
	// anomalyclip/layers-6-12-18-24
	// anomalyclip/layers-12-24 [12 24]
}
