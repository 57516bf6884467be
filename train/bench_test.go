package train_test

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"github.com/dapobench/dapobench/checkpoints"
	"github.com/dapobench/dapobench/clip"
	"github.com/dapobench/dapobench/internal/memstat"
	"github.com/dapobench/dapobench/onnx/grad"
	"github.com/dapobench/dapobench/onnx/graph"
	"github.com/dapobench/dapobench/onnx/runner"
	"github.com/dapobench/dapobench/train"
)

// The step benchmark's model: the tiny one by default, so that `make
// bench` stays quick; -train.arch=vit-b is a ViT-B/16-sized DAPO model
// (vision width 768, 12 layers, 12 heads, patch 16 at 224 px; text width
// 512, 12 layers) and -train.arch=vit-l OpenAI's ViT-L/14@336 at 518 px,
// both with seeded random weights; they take minutes per step on a CPU
// (`make bench-train` runs them):
//
//	go test -run '^$' -bench BenchmarkStep -benchtime 2x -timeout 60m ./train/ -train.arch=vit-b
var (
	benchArch      = flag.String("train.arch", "tiny", "step benchmark: tiny, vit-b or vit-l")
	benchBatch     = flag.Int("train.batch", 8, "step benchmark: images per step")
	benchScheme    = flag.String("train.scheme", checkpoints.DAPO, "step benchmark: dapo or anomalyclip")
	benchRecompute = flag.String("train.recompute", "auto", "step benchmark: auto, on or off")
	benchSession   = flag.String("train.session", "train", "step benchmark: train (the trainer's load options) or plain (the runner's defaults)")
)

// vitB is a ViT-B/16 CLIP at 224 px with QuickGELU: OpenAI's ViT-B/16
// sizes.
func vitB() clip.Arch {
	return clip.Arch{Name: "ViT-B-16-random", ImageSize: 224, PatchSize: 16,
		VisionWidth: 768, VisionLayers: 12, VisionHeads: 12,
		TextWidth: 512, TextLayers: 12, TextHeads: 8,
		ContextLength: 77, VocabSize: 49408, EmbedDim: 512, Act: clip.QuickGELU}
}

// procStatus reads the resident memory ("VmRSS") or its peak ("VmHWM") in
// MiB.
func procStatus(field string) (float64, bool) {
	read := memstat.Current
	if field == "VmHWM" {
		read = memstat.Peak
	}
	b, ok := read()
	return float64(b) / (1 << 20), ok
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStep times one training step (forward and backward as one
// onnxruntime run, all CPUs) and reports its memory: saved_MB is what the
// backward part keeps of the forward activations (grad.Analyze);
// peak_RSS_MB the process's peak resident memory during the steps, with
// the model loaded; step_RSS_MB that peak minus the resident memory before
// the first step, i.e. what a step adds to the loaded model. The Adam
// update in Go is not included (it is linear in the learned tensors).
func BenchmarkStep(b *testing.B) {
	var arch clip.Arch
	variant := clip.DAPO
	if *benchScheme == checkpoints.AnomalyCLIP {
		variant = clip.AnomalyCLIP
	}
	size := 0
	switch *benchArch {
	case "tiny":
		arch = clip.TinyArch(variant)
	case "vit-b":
		arch = vitB()
	case "vit-l":
		arch, size = vitL(), 518
	default:
		b.Fatalf("-train.arch %q: want tiny, vit-b or vit-l", *benchArch)
	}
	rc, err := train.ParseRecompute(*benchRecompute)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dir := b.TempDir()
	man, err := clip.BuildSeeded(ctx, dir, arch, 1, clip.Options{Variant: variant, ImageSize: size})
	if err != nil {
		b.Fatal(err)
	}
	m := tiny{dir, man}
	g := graphOf(b, m, *benchScheme, "")
	step, recomputes, err := train.Step(g, *benchBatch, rc)
	if err != nil {
		b.Fatal(err)
	}
	st, err := grad.Analyze(step, map[string]int64{"batch": int64(*benchBatch)})
	if err != nil {
		b.Fatal(err)
	}
	data, err := graph.Marshal(step)
	if err != nil {
		b.Fatal(err)
	}
	fwdNodes := len(g.Forward.GetGraph().GetNode())
	light := &train.Graph{Head: g.Head, Learnable: g.Learnable} // what the feeds need
	step, g = nil, nil
	r, err := runner.Open(runner.Options{Device: "cpu"})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	lo := train.StepLoadOptions
	switch *benchSession {
	case "plain":
		lo = runner.LoadOptions{}
	case "train":
	default:
		b.Fatalf("-train.session %q: want train or plain", *benchSession)
	}
	sess, err := r.LoadBytesWith(ctx, "step", data, dir, lo)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	data = nil
	f := feeds(b, m, light, *benchBatch, 5)
	runtime.GC()
	debug.FreeOSMemory()
	before, okRSS := procStatus("VmRSS")
	reset := memstat.ResetPeak()
	mode := "keep"
	if recomputes {
		mode = "recompute"
	}
	name := fmt.Sprintf("%s/%s/batch%d/%s/%s/threads%d", *benchScheme, *benchArch, *benchBatch, mode, *benchSession, r.Threads())
	b.Run(name, func(b *testing.B) {
		var peaks []float64 // peak after each step
		cpu0 := cpuTime()
		for b.Loop() {
			out, err := sess.Run(ctx, f)
			if err != nil {
				b.Fatal(err)
			}
			if v := out[train.OutLoss].Float32; len(v) != 1 || v[0] != v[0] {
				b.Fatalf("loss %v", v)
			}
			p, _ := procStatus("VmHWM")
			peaks = append(peaks, p)
		}
		// CPU seconds per step hold steady on a shared machine, where the
		// wall time depends on what else runs.
		b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu_s/op")
		b.ReportMetric(float64(st.SavedBytes)/(1<<20), "saved_MB")
		b.ReportMetric(float64(fwdNodes), "fwd_nodes")
		b.ReportMetric(float64(st.BackwardNodes), "bwd_nodes")
		if peak, ok := procStatus("VmHWM"); ok && okRSS {
			b.ReportMetric(peak, "peak_RSS_MB")
			// What the steps after the first added, and after the
			// second (-benchtime 3x or more): 0 when memory does not grow
			// from step to step.
			b.ReportMetric(peak-peaks[0], "growth_MB")
			if len(peaks) > 2 {
				b.ReportMetric(peak-peaks[1], "growth_after2_MB")
			}
			if reset {
				b.ReportMetric(peak-before, "step_RSS_MB")
			}
		}
	})
}

// vitL is OpenAI's ViT-L/14@336px, the backbone of DAPO and AnomalyCLIP
// (run at 518 px).
func vitL() clip.Arch {
	a, err := clip.Preset("ViT-L-14-336")
	if err != nil {
		panic(err)
	}
	return a
}
