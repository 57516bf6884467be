package safetensors_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/dapobench/dapobench/clip/safetensors"
)

func Example() {
	var buf bytes.Buffer
	err := safetensors.Write(&buf, []safetensors.Tensor{
		safetensors.F32("prompt_learner.ctx", []int{2, 2}, []float32{1, 2, 3, 4}),
		safetensors.F16("half", []int{1}, []float32{0.1}),
	}, map[string]string{"format": "pt"})
	if err != nil {
		log.Fatal(err)
	}
	f, err := safetensors.Parse(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range f.Tensors {
		v, _ := t.Float32()
		fmt.Println(t.Name, t.DType, t.Shape, v)
	}
	// Output:
	// half F16 [1] [0.099975586]
	// prompt_learner.ctx F32 [2 2] [1 2 3 4]
}
