package adaclip_test

import (
	"fmt"

	"github.com/dapobench/dapobench/baselines/adaclip"
)

func ExampleSentences() {
	normal, abnormal := adaclip.Sentences("pipe-fryum")
	fmt.Println(len(normal), len(abnormal))
	fmt.Println(normal[4])
	fmt.Println(abnormal[len(abnormal)-1])
	// Output:
	// 28 20
	// a bad photo of a flawless pipe fryum.
	// a cropped photo of the pipe fryum with damage.
}

func ExampleParse() {
	for _, v := range adaclip.Variants() {
		fmt.Println(v.Name)
	}
	// Output:
	// adaclip
	// adaclip/kmeans-per-image
	// adaclip/sklearn-1.3
	// adaclip/no-hsf
	// adaclip/no-smoothing
}
