package featcache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/dapobench/dapobench/bench/featcache"
)

// The pattern a pipeline follows: look up, and on a miss or a corrupt
// entry run the image tower and store its outputs.
func Example() {
	dir, err := os.MkdirTemp("", "featcache-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	c, err := featcache.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	key := featcache.Key{
		Model:      "sha256:…image.onnx",
		Preprocess: "dapo squash-bicubic 518",
		Content:    "sha256 of the image file, from featcache.HashFile",
	}
	imageTower := func() featcache.Entry {
		return featcache.Entry{Tensors: []featcache.Tensor{
			{Name: "image_embed", Shape: []int{4}, Data: []float32{0.1, 0.2, 0.3, 0.4}},
			{Name: "patch_24", Shape: []int{2, 4}, Data: make([]float32, 8)},
		}}
	}
	for range 2 {
		e, err := c.Get(ctx, key)
		switch {
		case errors.Is(err, featcache.ErrMiss), errors.Is(err, featcache.ErrCorrupt):
			e = imageTower()
			if err := c.Put(ctx, key, e); err != nil {
				log.Fatal(err)
			}
		case err != nil:
			log.Fatal(err)
		}
		emb, _ := e.Tensor("image_embed")
		fmt.Println(emb.Shape, emb.Data)
	}
	s := c.Stats()
	fmt.Printf("hits %d, misses %d, corrupt %d, puts %d\n", s.Hits, s.Misses, s.Corrupt, s.Puts)
	// Output:
	// [4] [0.1 0.2 0.3 0.4]
	// [4] [0.1 0.2 0.3 0.4]
	// hits 1, misses 1, corrupt 0, puts 1
}
