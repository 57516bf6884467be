package multiads_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/dapobench/dapobench/baselines/internal/parity"
	"github.com/dapobench/dapobench/baselines/internal/parity/trainparity"
	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/race"
)

// trainTol is the relative tolerance of the training comparison.
const trainTol = 1e-4

// TestOfficialTraining trains MultiADS' linear layers with dapobench
// train for one epoch of three Adam steps (batch 2) from the initial
// tensors the official train.py drew (testdata/init.pth), on the same
// images in the same order, and compares each step's loss, the focal and
// dice terms and the tensors after the third step with the official
// train.py run unchanged (testdata/reference.py).
func TestOfficialTraining(t *testing.T) {
	race.SkipNumeric(t)
	b, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		WeightsDigest string               `json:"weights_digest"`
		Train         trainparity.Training `json:"train"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if got := parity.WeightsDigest(parity.Weights()); got != r.WeightsDigest {
		t.Fatalf("the parity weights changed: regenerate testdata (see reference.py)")
	}
	dir := t.TempDir()
	d := parity.WriteData(t, dir, "mvtec")
	m := parity.Model(t, dir, clip.MultiADS)
	run := trainparity.Train(t, &r.Train, checkpoints.MultiADS, "mvtec", "testdata", m.Dir, d)
	trainparity.CheckTraining(t, &r.Train, run, parity.ReadReference(t, "testdata/reference.safetensors"), trainTol)
}
