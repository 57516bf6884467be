package npy_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/dapobench/dapobench/internal/npy"
)

func Example() {
	var buf bytes.Buffer
	if err := npy.Write(&buf, []int{2, 2}, []float32{1, 2, 3, 4}); err != nil {
		log.Fatal(err)
	}
	a, err := npy.Decode(buf.Bytes(), npy.DefaultMaxElems)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Shape, a.Data, buf.Len())
	// Output:
	// [2 2] [1 2 3 4] 144
}
