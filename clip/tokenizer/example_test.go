package tokenizer_test

import (
	"fmt"
	"log"

	"github.com/dapobench/dapobench/clip/tokenizer"
)

func Example() {
	tk, err := tokenizer.New()
	if err != nil {
		log.Fatal(err)
	}
	ids, err := tk.Tokenize("X X X X X bent anomaly object", false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ids[:11])
	fmt.Println("end of text at", tokenizer.EOTIndex(ids))
	// Output:
	// [49406 343 343 343 343 343 18369 46811 14115 49407 0]
	// end of text at 9
}
