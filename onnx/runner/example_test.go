package runner_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/onnx/runner/internal/testmodel"
)

func Example() {
	// A small model standing in for an image tower: inputs x [batch, 4] and
	// idx [batch], outputs probs [batch, 3] and rows [batch, 2].
	dir, err := os.MkdirTemp("", "runner-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.onnx")
	if err := testmodel.Write(path, testmodel.NewClassifier(1, 4, 3, 5, 2).Model(nil), true); err != nil {
		log.Fatal(err)
	}

	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	sess, err := rt.Load(context.Background(), path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("inputs:", sess.Inputs())
	fmt.Println("provider:", sess.Provider())

	// A batch of two; the next call may use any other batch size.
	out, err := sess.Run(context.Background(), map[string]runner.Tensor{
		"x":   {Shape: []int64{2, 4}, Float32: []float32{1, 0, 0, 0, 0, 1, 0, 0}},
		"idx": {Shape: []int64{2}, Int64: []int64{4, 0}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("probs shape:", out["probs"].Shape)
	fmt.Println("rows shape:", out["rows"].Shape)
	// Output:
	// inputs: [x float32 [-1 4] idx int64 [-1]]
	// provider: CPUExecutionProvider
	// probs shape: [2 3]
	// rows shape: [2 2]
}
