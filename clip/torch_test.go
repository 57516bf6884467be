package clip

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dapobench/dapobench/internal/budget/budgettest"
)

// TestReadTorchBombs reads the crafted checkpoints of testdata/torch/bombs
// (gen_pth.py): each declares far more than it holds and must be refused
// with an error naming the file and the problem, having allocated next to
// nothing.
func TestReadTorchBombs(t *testing.T) {
	for name, want := range map[string]string{
		"negative_size.pth":    "negative dimension",
		"negative_storage.pth": "-1 values",
		"huge_storage.pth":     "needs 40000000000 bytes, its record holds 16",
		"huge_view.pth":        "broadcast view",
		"pickle_string.pth":    "declares 1099511627776 bytes",
	} {
		p := filepath.Join("testdata", "torch", "bombs", name)
		budgettest.Allocs(t, 1<<20, func() {
			_, err := ReadTensors(p)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), name) {
				t.Errorf("%s: error %v, want it to name the file and say %q", name, err, want)
			}
		})
	}
}

// TestReadTorchBudget lowers the tensor budget below a real checkpoint's
// size: the reader refuses it and says how to raise the budget.
func TestReadTorchBudget(t *testing.T) {
	t.Setenv("DAPOBENCH_MAX_TENSOR_ELEMENTS", "50")
	_, err := ReadTensors("testdata/torch/dapo_like.pth")
	if err == nil || !strings.Contains(err.Error(), "DAPOBENCH_MAX_TENSOR_ELEMENTS") {
		t.Errorf("error %v, want the budget named", err)
	}
	t.Setenv("DAPOBENCH_MAX_TENSOR_ELEMENTS", "-3")
	if _, err := ReadTensors("testdata/torch/dapo_like.pth"); err == nil || !strings.Contains(err.Error(), "positive integer") {
		t.Errorf("bad budget value: %v", err)
	}
}

// FuzzReadTorch feeds arbitrary bytes to the checkpoint reader under a
// small tensor budget: whatever the input, it must return (an error or
// tensors) without panicking, and without allocating more than the input
// can justify.
func FuzzReadTorch(f *testing.F) {
	for _, p := range []string{"testdata/torch/dapo_like.pth", "testdata/torch/clip_state.pth"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	bombs, _ := filepath.Glob("testdata/torch/bombs/*.pth")
	for _, p := range bombs {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	budgettest.Limit(f, budgettest.SmallPixels, 1<<16)
	f.Fuzz(func(t *testing.T, b []byte) {
		// 1<<16 values of the budget as float32 and their copies, the
		// pickle, and the zip reader's buffers.
		budgettest.Allocs(t, 4<<20+64*uint64(len(b)), func() {
			readTorchFrom("fuzz.pth", bytes.NewReader(b), int64(len(b)))
		})
	})
}
