package runner_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dapobench/dapobench/internal/onnxpb"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/onnx/runner/internal/testmodel"
)

// -device selects the device for the CUDA tests. On a GPU machine:
//
//	go test ./onnx/runner -run CUDA -v -args -device=cuda
//
// makes them require a working CUDA provider instead of accepting the
// fallback this CPU-only environment shows.
var deviceFlag = flag.String("device", "", "device the CUDA tests must use (cuda or cuda:N); empty accepts a fallback")

const tol = 1e-5

func open(t testing.TB, device string) *runner.Runtime {
	t.Helper()
	rt, err := runner.Open(runner.Options{Device: device, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Error(err)
		}
	})
	return rt
}

func writeModel(t testing.TB, c *testmodel.Classifier, external bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "classifier.onnx")
	if err := testmodel.Write(path, c.Model(map[string]string{"image_size": "518"}), external); err != nil {
		t.Fatal(err)
	}
	return path
}

// batch draws a random input batch for the classifier.
func batch(c *testmodel.Classifier, r *rand.Rand, n int) (x []float32, idx []int64) {
	x = make([]float32, n*c.K)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	idx = make([]int64, n)
	for i := range idx {
		idx[i] = int64(r.IntN(c.V))
	}
	return x, idx
}

// check runs one batch and compares both outputs with the Go forward pass.
func check(ctx context.Context, s *runner.Session, c *testmodel.Classifier, x []float32, idx []int64, tol float64) error {
	n := int64(len(idx))
	out, err := s.Run(ctx, map[string]runner.Tensor{
		"x":   {Shape: []int64{n, int64(c.K)}, Float32: x},
		"idx": {Shape: []int64{n}, Int64: idx},
	})
	if err != nil {
		return err
	}
	probs, rows, label := c.Forward(x, idx)
	if got := out["label"]; fmt.Sprint(got.Shape, got.Int64) != fmt.Sprint([]int64{n}, label) {
		return fmt.Errorf("label: %v %v, want %v %v", got.Shape, got.Int64, []int64{n}, label)
	}
	for _, o := range []struct {
		name  string
		want  []float32
		shape []int64
	}{{"probs", probs, []int64{n, int64(c.M)}}, {"rows", rows, []int64{n, int64(c.D)}}} {
		got := out[o.name]
		if fmt.Sprint(got.Shape) != fmt.Sprint(o.shape) {
			return fmt.Errorf("%s: shape %v, want %v", o.name, got.Shape, o.shape)
		}
		if len(got.Float32) != len(o.want) {
			return fmt.Errorf("%s: %d values, want %d", o.name, len(got.Float32), len(o.want))
		}
		for i := range o.want {
			if d := math.Abs(float64(got.Float32[i] - o.want[i])); d > tol {
				return fmt.Errorf("%s[%d] = %g, want %g (diff %g)", o.name, i, got.Float32[i], o.want[i], d)
			}
		}
	}
	return nil
}

func TestRunMatchesGo(t *testing.T) {
	rt := open(t, "cpu")
	c := testmodel.NewClassifier(1, 16, 10, 50, 8)
	r := rand.New(rand.NewPCG(2, 3))
	for _, tc := range []struct {
		name     string
		external bool
		bytes    bool
	}{
		{"file", false, false},
		{"file with external data", true, false},
		{"bytes", false, true},
		{"bytes with external data", true, true},
		{"bytes, one weight copy", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeModel(t, c, tc.external)
			var s *runner.Session
			var err error
			if tc.bytes {
				var b []byte
				if b, err = os.ReadFile(path); err != nil {
					t.Fatal(err)
				}
				dir := ""
				if tc.external {
					dir = filepath.Dir(path)
				}
				var lo runner.LoadOptions
				if strings.Contains(tc.name, "one weight copy") {
					lo = runner.LoadOptions{OneWeightCopy: true}
				}
				s, err = rt.LoadBytesWith(context.Background(), "classifier", b, dir, lo)
			} else {
				s, err = rt.Load(context.Background(), path)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if tc.external {
				if st, err := os.Stat(path); err != nil || st.Size() > 1024 {
					t.Fatalf("model with external data should be small: %v %v", st.Size(), err)
				}
			}
			if got := s.Provider(); got != runner.ProviderCPU {
				t.Errorf("Provider() = %q, want %q", got, runner.ProviderCPU)
			}
			// Dynamic batch: one session, several sizes, in any order.
			for _, n := range []int{1, 3, 17, 2} {
				x, idx := batch(c, r, n)
				if err := check(context.Background(), s, c, x, idx, tol); err != nil {
					t.Errorf("batch %d: %v", n, err)
				}
			}
		})
	}
}

func TestSignature(t *testing.T) {
	rt := open(t, "cpu")
	c := testmodel.NewClassifier(1, 16, 10, 50, 8)
	s, err := rt.Load(context.Background(), writeModel(t, c, true))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(s.Inputs(), s.Outputs(), s.Metadata())
	want := "[x float32 [-1 16] idx int64 [-1]] [probs float32 [-1 10] rows float32 [-1 8] label int64 [-1]] map[image_size:518]"
	if got != want {
		t.Errorf("signature:\n got %s\nwant %s", got, want)
	}
}

func TestConcurrentRuns(t *testing.T) {
	rt := open(t, "cpu")
	c := testmodel.NewClassifier(4, 32, 7, 100, 5)
	s, err := rt.Load(context.Background(), writeModel(t, c, false))
	if err != nil {
		t.Fatal(err)
	}
	const workers, runs = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for range runs {
				x, idx := batch(c, r, 1+r.IntN(17))
				if err := check(context.Background(), s, c, x, idx, tol); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRunInputErrors(t *testing.T) {
	rt := open(t, "cpu")
	c := testmodel.NewClassifier(1, 4, 3, 5, 2)
	path := writeModel(t, c, false)
	s, err := rt.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 8)
	idx := []int64{0, 1}
	for _, tc := range []struct {
		name   string
		inputs map[string]runner.Tensor
		want   string
	}{
		{"missing", map[string]runner.Tensor{"x": {Shape: []int64{2, 4}, Float32: x}}, `missing input "idx"`},
		{"unknown", map[string]runner.Tensor{"x": {Shape: []int64{2, 4}, Float32: x}, "idx": {Shape: []int64{2}, Int64: idx}, "y": {Shape: []int64{1}, Int64: idx[:1]}}, "unknown inputs y"},
		{"dtype", map[string]runner.Tensor{"x": {Shape: []int64{2, 4}, Int64: make([]int64, 8)}, "idx": {Shape: []int64{2}, Int64: idx}}, `input "x": want float32, got int64`},
		{"fixed dim", map[string]runner.Tensor{"x": {Shape: []int64{4, 2}, Float32: x}, "idx": {Shape: []int64{2}, Int64: idx}}, "does not fit the graph's [-1 4]"},
		{"rank", map[string]runner.Tensor{"x": {Shape: []int64{8}, Float32: x}, "idx": {Shape: []int64{2}, Int64: idx}}, "does not fit"},
		{"length", map[string]runner.Tensor{"x": {Shape: []int64{2, 4}, Float32: x[:7]}, "idx": {Shape: []int64{2}, Int64: idx}}, "needs 8 values, got 7"},
		{"zero batch", map[string]runner.Tensor{"x": {Shape: []int64{0, 4}, Float32: []float32{}}, "idx": {Shape: []int64{0}, Int64: []int64{}}}, "must be positive"},
		{"index out of range", map[string]runner.Tensor{"x": {Shape: []int64{2, 4}, Float32: x}, "idx": {Shape: []int64{2}, Int64: []int64{0, 99}}}, "on CPUExecutionProvider"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := s.Run(context.Background(), tc.inputs)
			if err == nil {
				t.Fatalf("no error; outputs %v", out)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should name %s and contain %q", err, path, tc.want)
			}
		})
	}
}

func TestBadModel(t *testing.T) {
	rt := open(t, "cpu")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := testmodel.NewClassifier(1, 4, 3, 5, 2)
	broken := c.Model(nil)
	broken.Graph.Node[0].OpType = "NoSuchOp"
	brokenBytes, err := testmodel.Marshal(broken)
	if err != nil {
		t.Fatal(err)
	}
	scalar := c.Model(nil)
	scalar.Graph.Output[1] = testmodel.ValueInfo("rows", onnxpb.TensorProto_FLOAT)
	scalarBytes, err := testmodel.Marshal(scalar)
	if err != nil {
		t.Fatal(err)
	}
	fp16 := c.Model(nil)
	fp16.Graph.Output[0] = testmodel.ValueInfo("probs", onnxpb.TensorProto_FLOAT16, "batch", int64(3))
	fp16Bytes, err := testmodel.Marshal(fp16)
	if err != nil {
		t.Fatal(err)
	}
	good := writeModel(t, c, true)
	if err := os.Remove(good + ".data"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing file", filepath.Join(dir, "absent.onnx"), "no such file"},
		{"empty file", write("empty.onnx", nil), "empty file"},
		{"text", write("text.onnx", []byte("this is not a protobuf\n")), "not an ONNX model"},
		{"unknown op", write("unknown-op.onnx", brokenBytes), "NoSuchOp"},
		{"missing external data", good, "classifier.onnx.data"},
		{"directory", dir, "is a directory"},
		{"scalar output", write("scalar.onnx", scalarBytes), `output "rows" is a scalar`},
		{"float16 output", write("fp16.onnx", fp16Bytes), `output "probs" has type FLOAT16`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := rt.Load(context.Background(), tc.path)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should name %s and contain %q", err, tc.path, tc.want)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	rt := open(t, "cpu")
	path := filepath.Join(t.TempDir(), "slow.onnx")
	const width = 512
	if err := testmodel.Write(path, testmodel.Slow(width, 200), false); err != nil {
		t.Fatal(err)
	}
	s, err := rt.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]runner.Tensor{"x": {Shape: []int64{width, width}, Float32: make([]float32, width*width)}}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Run(ctx, in); !errors.Is(err, context.Canceled) {
		t.Errorf("already cancelled: err = %v, want context.Canceled", err)
	}

	// 200 MatMuls of 512×512 by 512×512 are 54 GFLOP: seconds of work, so a
	// run that returns shortly after a 20 ms deadline was terminated.
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Run(ctx, in)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	t.Logf("terminated after %v", time.Since(start))

	// The session stays usable after a terminated run.
	out, err := s.Run(context.Background(), map[string]runner.Tensor{"x": {Shape: []int64{1, width}, Float32: make([]float32, width)}})
	if err != nil || len(out["y"].Float32) != width {
		t.Errorf("run after cancel: %v", err)
	}
}

func TestClose(t *testing.T) {
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	c := testmodel.NewClassifier(1, 4, 3, 5, 2)
	path := writeModel(t, c, false)
	s, err := rt.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if rt.Version() != runner.ORTVersion { // safe after the library is unloaded
		t.Errorf("Version() after Close = %q", rt.Version())
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Runtime.Close: %v", err)
	}
	_, err = s.Run(context.Background(), map[string]runner.Tensor{
		"x": {Shape: []int64{1, 4}, Float32: make([]float32, 4)}, "idx": {Shape: []int64{1}, Int64: []int64{0}}})
	if err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Run on closed session: err = %v", err)
	}
	if _, err := rt.Load(context.Background(), path); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Load on closed runtime: err = %v", err)
	}
}

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", "auto", true}, {"auto", "auto", true}, {"cpu", "cpu", true},
		{"cuda", "cuda:0", true}, {"cuda:0", "cuda:0", true}, {"cuda:3", "cuda:3", true},
		{"cuda:", "", false}, {"cuda:-1", "", false}, {"cuda:01", "", false}, {"cuda:x", "", false},
		{"gpu", "", false}, {"CPU", "", false},
	} {
		d, err := runner.ParseDevice(tc.in)
		if (err == nil) != tc.ok || (tc.ok && d.String() != tc.want) {
			t.Errorf("ParseDevice(%q) = %v, %v; want %q ok=%v", tc.in, d, err, tc.want, tc.ok)
		}
	}
	if _, err := runner.Open(runner.Options{Device: "gpu"}); err == nil || !strings.Contains(err.Error(), "want auto, cpu, cuda or cuda:N") {
		t.Errorf("Open with device gpu: %v", err)
	}
}

// TestResolveDevice: a job's runs ask for cpu after auto fell back, and
// for the device as given when CUDA started.
func TestResolveDevice(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	if d, err := runner.ResolveDevice(runner.Options{Device: "cpu", Logger: quiet}); err != nil || d != "cpu" {
		t.Errorf("cpu: %q, %v", d, err)
	}
	want := "cpu"
	if open(t, "auto").Provider() == runner.ProviderCUDA {
		want = "auto"
	}
	if d, err := runner.ResolveDevice(runner.Options{Device: "auto", Logger: quiet}); err != nil || d != want {
		t.Errorf("auto: %q, %v; want %q", d, err, want)
	}
	if _, err := runner.ResolveDevice(runner.Options{Device: "tpu", Logger: quiet}); err == nil {
		t.Error("tpu: no error")
	}
}

func TestMissingLibrary(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	t.Run("env path absent", func(t *testing.T) {
		t.Setenv(runner.LibraryEnv, fake)
		_, err := runner.Open(runner.Options{Device: "cpu"})
		if err == nil || !strings.Contains(err.Error(), fake) || !strings.Contains(err.Error(), "make setup") || !strings.Contains(err.Error(), "$ONNXRUNTIME_LIB") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("not a library", func(t *testing.T) {
		if err := os.WriteFile(fake, []byte("not an ELF file"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := runner.Open(runner.Options{Device: "cpu", Library: fake})
		if err == nil || !strings.Contains(err.Error(), fake) || !strings.Contains(err.Error(), "make setup") {
			t.Errorf("err = %v", err)
		}
		// The failed load leaves the process able to load the real library.
		rt := open(t, "cpu")
		if rt.Version() != runner.ORTVersion {
			t.Errorf("Version() = %q, want %q", rt.Version(), runner.ORTVersion)
		}
	})
	t.Run("search", func(t *testing.T) {
		t.Setenv(runner.LibraryEnv, "")
		t.Chdir(t.TempDir()) // no go.mod above a temp dir, no cache: only the executable's folder remains
		p, err := runner.FindLibrary("")
		if err == nil {
			t.Skipf("found %s next to the test binary", p)
		}
		if !strings.Contains(err.Error(), "make setup") || !strings.Contains(err.Error(), runner.LibraryEnv) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("found from package folder", func(t *testing.T) {
		t.Setenv(runner.LibraryEnv, "")
		p, err := runner.FindLibrary("")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(p, filepath.Join(".cache", "onnxruntime-"+runner.ORTVersion, "libonnxruntime.so.1")) {
			t.Errorf("FindLibrary() = %s, want the make setup cache", p)
		}
	})
}

func TestSecondLibraryRefused(t *testing.T) {
	rt := open(t, "cpu")
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := runner.Open(runner.Options{Device: "cpu", Library: other})
	if err == nil || !strings.Contains(err.Error(), "already loaded from "+rt.Library()) {
		t.Errorf("err = %v", err)
	}
}

// cudaWanted reports whether -device asks the CUDA tests to require a GPU.
func cudaWanted(t *testing.T) string {
	if *deviceFlag == "" {
		return ""
	}
	d, err := runner.ParseDevice(*deviceFlag)
	if err != nil || d.Kind != runner.CUDA {
		t.Fatalf("-device=%s: want cuda or cuda:N", *deviceFlag)
	}
	return d.String()
}

// TestCUDAAuto: auto either runs on CUDA with no warning, or falls back to
// the CPU with exactly one warning however many models it loads.
func TestCUDAAuto(t *testing.T) {
	var logs bytes.Buffer
	rt, err := runner.Open(runner.Options{Device: "auto", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	c := testmodel.NewClassifier(5, 16, 10, 50, 8)
	path := writeModel(t, c, false)
	r := rand.New(rand.NewPCG(1, 1))
	for range 3 {
		s, err := rt.Load(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		x, idx := batch(c, r, 5)
		if err := check(context.Background(), s, c, x, idx, 1e-4); err != nil {
			t.Error(err)
		}
		if s.Provider() != rt.Provider() {
			t.Errorf("session on %s, runtime on %s", s.Provider(), rt.Provider())
		}
	}
	warnings := strings.Count(logs.String(), "level=WARN")
	t.Logf("provider %s; log:\n%s", rt.Provider(), logs.String())
	switch rt.Provider() {
	case runner.ProviderCPU:
		if want := cudaWanted(t); want != "" {
			t.Fatalf("-device=%s given but auto fell back to the CPU", want)
		}
		if warnings != 1 || !strings.Contains(logs.String(), "CUDA unavailable") {
			t.Errorf("want exactly one CUDA fallback warning, got %d", warnings)
		}
	case runner.ProviderCUDA:
		if warnings != 0 {
			t.Errorf("CUDA in use but %d warnings", warnings)
		}
	default:
		t.Errorf("Provider() = %q", rt.Provider())
	}
}

// TestCUDAExplicit: an explicit cuda device either works, matching the Go
// reference, or fails at Open with an error that names the device and says
// what to do. With -device=cuda it must work.
func TestCUDAExplicit(t *testing.T) {
	dev := cudaWanted(t)
	if dev == "" {
		dev = "cuda"
	}
	var logs bytes.Buffer
	rt, err := runner.Open(runner.Options{Device: dev, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		if *deviceFlag != "" {
			t.Fatalf("-device=%s: %v", *deviceFlag, err)
		}
		t.Logf("Open(%s): %v", dev, err)
		for _, want := range []string{"device cuda:", "CUDA execution provider cannot start", "--device cpu"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error should contain %q: %v", want, err)
			}
		}
		return
	}
	defer rt.Close()
	if rt.Provider() != runner.ProviderCUDA || logs.Len() != 0 {
		t.Fatalf("Open(%s) succeeded on %s with log %q", dev, rt.Provider(), logs.String())
	}
	c := testmodel.NewClassifier(6, 64, 10, 50, 8)
	s, err := rt.Load(context.Background(), writeModel(t, c, true))
	if err != nil {
		t.Fatal(err)
	}
	if s.Provider() != runner.ProviderCUDA {
		t.Errorf("session provider %s", s.Provider())
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for range 20 {
				x, idx := batch(c, r, 1+r.IntN(33))
				if err := check(context.Background(), s, c, x, idx, 1e-4); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkRun measures the per-call overhead of Run (tensor wrapping,
// output copies) on a graph too small for the arithmetic to matter.
func BenchmarkRun(b *testing.B) {
	rt := open(b, "cpu")
	c := testmodel.NewClassifier(1, 64, 16, 100, 32)
	s, err := rt.Load(context.Background(), writeModel(b, c, false))
	if err != nil {
		b.Fatal(err)
	}
	x, idx := batch(c, rand.New(rand.NewPCG(1, 2)), 8)
	in := map[string]runner.Tensor{
		"x":   {Shape: []int64{8, int64(c.K)}, Float32: x},
		"idx": {Shape: []int64{8}, Int64: idx},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for b.Loop() {
		if _, err := s.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCloseDuringUse closes a Runtime while goroutines load and run: every
// call either completes or reports that the runtime or session is closed.
func TestCloseDuringUse(t *testing.T) {
	rt, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	c := testmodel.NewClassifier(1, 16, 10, 50, 8)
	path := writeModel(t, c, false)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 5))
			for {
				s, err := rt.Load(context.Background(), path)
				if err != nil {
					if !strings.Contains(err.Error(), "runtime is closed") {
						t.Errorf("Load: %v", err)
					}
					return
				}
				x, idx := batch(c, r, 3)
				if err := check(context.Background(), s, c, x, idx, tol); err != nil && !strings.Contains(err.Error(), "session is closed") {
					t.Errorf("Run: %v", err)
				}
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	if err := rt.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
}

// TestRunInto checks that bound outputs are written in place, equal Run's,
// and that a bound output of the wrong size or name is an error.
func TestRunInto(t *testing.T) {
	rt := open(t, "cpu")
	c := testmodel.NewClassifier(1, 16, 10, 50, 8)
	s, err := rt.Load(context.Background(), writeModel(t, c, false))
	if err != nil {
		t.Fatal(err)
	}
	x, idx := batch(c, rand.New(rand.NewPCG(4, 5)), 3)
	in := map[string]runner.Tensor{"x": {Shape: []int64{3, int64(c.K)}, Float32: x}, "idx": {Shape: []int64{3}, Int64: idx}}
	want, err := s.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	probs := make([]float32, 3*c.M)
	out, err := s.RunInto(context.Background(), in, map[string]runner.Tensor{"probs": {Shape: []int64{3, int64(c.M)}, Float32: probs}})
	if err != nil {
		t.Fatal(err)
	}
	if &out["probs"].Float32[0] != &probs[0] {
		t.Error("the bound output is not the caller's slice")
	}
	if fmt.Sprint(probs) != fmt.Sprint(want["probs"].Float32) || fmt.Sprint(out["rows"].Float32) != fmt.Sprint(want["rows"].Float32) {
		t.Errorf("RunInto differs from Run:\n%v\n%v", probs, want["probs"].Float32)
	}
	for _, tc := range []struct {
		name string
		out  map[string]runner.Tensor
		want string
	}{
		{"short", map[string]runner.Tensor{"probs": {Shape: []int64{3, int64(c.M)}, Float32: probs[:5]}}, `output "probs": shape`},
		{"unknown", map[string]runner.Tensor{"nope": {Shape: []int64{1}, Float32: probs[:1]}}, "unknown outputs nope"},
	} {
		if _, err := s.RunInto(context.Background(), in, tc.out); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}
