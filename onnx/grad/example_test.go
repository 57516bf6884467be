package grad_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
)

func ExampleBackward() {
	// A forward graph: y = x·W with a learnable input x and a frozen
	// weight W, then a loss written after it.
	g := graph.New(graph.Float32)
	x := g.Input("x", graph.Float32, graph.Sym("batch"), graph.N(2))
	y := g.MatMul(x, g.Weight("W", []int{2, 2}, []float32{1, 2, 3, 4}))
	b, err := grad.Extend(g.Model("example", nil))
	if err != nil {
		log.Fatal(err)
	}
	b.Output(b.Reshape(b.ReduceSum(b.Mul(y, y), false), 1), "loss") // Σ y²
	fwd, err := b.Model()
	if err != nil {
		log.Fatal(err)
	}

	// One model for forward and backward; onnxruntime runs it as it
	// runs any inference graph.
	bwd, err := grad.Backward(fwd, "loss", []string{"x"}, grad.Options{})
	if err != nil {
		log.Fatal(err)
	}
	data, err := graph.Marshal(bwd)
	if err != nil {
		log.Fatal(err)
	}
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	sess, err := rt.LoadBytes(context.Background(), "example", data, "")
	if err != nil {
		log.Fatal(err)
	}
	out, err := sess.Run(context.Background(), map[string]runner.Tensor{
		"x": {Shape: []int64{1, 2}, Float32: []float32{1, 1}},
	})
	if err != nil {
		log.Fatal(err)
	}
	// y = [4 6], loss = 52, dloss/dx = 2y·Wᵀ = [32 72]; W gets nothing.
	fmt.Println("outputs:", sess.Outputs())
	fmt.Println("loss:", out["loss"].Float32)
	fmt.Println("grad_x:", out["grad_x"].Float32)
	// Output:
	// outputs: [loss float32 [1] grad_x float32 [-1 2]]
	// loss: [52]
	// grad_x: [32 72]
}
