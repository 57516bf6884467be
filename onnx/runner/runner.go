package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Options configure a Runtime. The zero value means: device auto, the
// library found by FindLibrary, one intra-op thread per usable CPU, warnings
// to slog.Default().
type Options struct {
	// Device is auto, cpu, cuda or cuda:N (see ParseDevice).
	Device string
	// Library overrides the onnxruntime shared library path.
	Library string
	// Threads is the intra-op thread count of each session; 0 means
	// runtime.GOMAXPROCS(0), which follows the machine and its cgroup limit.
	Threads int
	// Logger receives the one warning printed when auto falls back to the CPU.
	Logger *slog.Logger
}

// Runtime loads graphs onto one device. It is safe for concurrent use.
type Runtime struct {
	dev     Device
	lib     string
	version string
	threads int
	log     *slog.Logger

	loading  sync.RWMutex // held shared by Load, exclusively by Close
	mu       sync.Mutex
	provider string // ProviderCUDA until a CUDA failure under auto
	warned   bool
	sessions map[*Session]struct{}
	closed   bool
}

// Open loads onnxruntime (once per process; see env) and decides the
// execution provider. For cuda it checks that the CUDA provider can be
// configured and fails if not; for auto such a failure logs one warning and
// selects the CPU.
func Open(opts Options) (*Runtime, error) {
	dev, err := ParseDevice(opts.Device)
	if err != nil {
		return nil, err
	}
	lib, err := FindLibrary(opts.Library)
	if err != nil {
		return nil, err
	}
	threads := opts.Threads
	if threads < 0 {
		return nil, fmt.Errorf("runner: Threads = %d, want 0 (automatic) or more", threads)
	}
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if err := acquireEnv(lib); err != nil {
		return nil, err
	}
	// The version string lives in the library, so copy it while it is loaded.
	rt := &Runtime{dev: dev, lib: lib, version: ort.GetVersion(), threads: threads, log: logger, provider: ProviderCPU, sessions: map[*Session]struct{}{}}
	if dev.Kind == CPU {
		return rt, nil
	}
	so, err := rt.sessionOptions(true, LoadOptions{})
	if err != nil {
		if dev.Kind == CUDA {
			releaseEnv()
			return nil, err
		}
		rt.fallBack(err)
		return rt, nil
	}
	so.Destroy()
	rt.provider = ProviderCUDA
	return rt, nil
}

// ResolveDevice opens a Runtime once and returns the device that the runs
// of a whole job should ask for: opts.Device when CUDA started, else cpu,
// so that auto's fallback warning is printed once and not by every run.
func ResolveDevice(opts Options) (string, error) {
	rt, err := Open(opts)
	if err != nil {
		return "", err
	}
	defer rt.Close()
	if rt.Provider() == ProviderCUDA {
		return rt.Device().String(), nil
	}
	return "cpu", nil
}

// Device returns the device the Runtime was opened with.
func (rt *Runtime) Device() Device { return rt.dev }

// Library returns the path of the onnxruntime library in use.
func (rt *Runtime) Library() string { return rt.lib }

// Version returns onnxruntime's version string, such as "1.24.1".
func (rt *Runtime) Version() string { return rt.version }

// Threads returns the intra-op thread count of each session.
func (rt *Runtime) Threads() int { return rt.threads }

// Provider returns the execution provider new sessions use: ProviderCUDA or
// ProviderCPU (after a fallback under auto, or for cpu).
func (rt *Runtime) Provider() string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.provider
}

// fallBack switches an auto Runtime to the CPU and warns, once.
func (rt *Runtime) fallBack(cause error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.provider = ProviderCPU
	if !rt.warned {
		rt.warned = true
		rt.log.Warn("runner: CUDA unavailable, running on the CPU (use --device cpu to silence this, --device cuda to make it an error)",
			"device", rt.dev.String(), "reason", cause.Error())
	}
}

// sessionOptions builds fresh ORT session options. A half-configured CUDA
// options object is never reused: on any CUDA error everything is released
// and the caller builds CPU options from scratch.
func (rt *Runtime) sessionOptions(cuda bool, lo LoadOptions) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("runner: session options: %w", err)
	}
	type step struct {
		what string
		err  func() error
	}
	steps := []step{
		{"intra-op threads", func() error { return so.SetIntraOpNumThreads(rt.threads) }},
		{"inter-op threads", func() error { return so.SetInterOpNumThreads(1) }},
		// Spinning threads would burn the CPUs between runs while Go code
		// (decoding, scoring) needs them.
		{"intra-op spinning", func() error { return so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0") }},
		{"inter-op spinning", func() error { return so.AddSessionConfigEntry("session.inter_op.allow_spinning", "0") }},
		// The memory pattern pre-plans one block per input shape and
		// keeps it: it made training steps grow from step to step and
		// batched inference hold several times its activations, for no
		// measurable speed (docs/README.md#perf-memory).
		{"memory pattern", func() error { return so.SetMemPattern(false) }},
	}
	if lo.OneWeightCopy {
		steps = append(steps, step{"pre-packing", func() error { return so.AddSessionConfigEntry("session.disable_prepacking", "1") }})
	}
	for _, s := range steps {
		if err := s.err(); err != nil {
			so.Destroy()
			return nil, fmt.Errorf("runner: session options: %s: %w", s.what, err)
		}
	}
	if cuda {
		if err := rt.appendCUDA(so); err != nil {
			so.Destroy()
			return nil, err
		}
	}
	return so, nil
}

func (rt *Runtime) appendCUDA(so *ort.SessionOptions) error {
	co, err := ort.NewCUDAProviderOptions()
	if err == nil {
		defer co.Destroy()
		if err = co.Update(map[string]string{"device_id": strconv.Itoa(rt.dev.ID)}); err == nil {
			err = so.AppendExecutionProviderCUDA(co)
		}
	}
	if err != nil {
		return fmt.Errorf("runner: device %v: the CUDA execution provider cannot start: %w%s", rt.dev, err, cudaHint(rt.lib))
	}
	return nil
}

// cudaHint explains the common cause: onnxruntime looks for its CUDA
// provider libraries beside the core library, and the CPU build that
// `make setup` fetches from npm ships without them.
func cudaHint(lib string) string {
	dir := filepath.Dir(lib)
	var missing []string
	for _, name := range []string{"libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"} {
		if isFile(filepath.Join(dir, name)) != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return " (the CUDA provider libraries are present; check the CUDA and cuDNN runtime libraries and the driver)"
	}
	return fmt.Sprintf(" (%s has no %v: the CPU-only onnxruntime build; install a CUDA build of onnxruntime %s there, or use --device cpu)", dir, missing, ORTVersion)
}

// Load creates a session for the model file at path. External data files
// named by the model are resolved relative to the model's folder. Creating a
// session cannot be interrupted; ctx is checked before and after.
func (rt *Runtime) Load(ctx context.Context, path string) (*Session, error) {
	data, unmap, err := mapModel(path)
	if err != nil {
		return nil, fmt.Errorf("runner: load %s: %w", path, err)
	}
	sig, err := readSignature(data)
	unmap()
	if err != nil {
		return nil, fmt.Errorf("runner: load %s: %w", path, err)
	}
	return rt.load(ctx, path, sig, LoadOptions{}, func(so *ort.SessionOptions, in, out []string) (*ort.DynamicAdvancedSession, error) {
		return ort.NewDynamicAdvancedSession(path, in, out, so)
	})
}

// LoadBytes creates a session for a serialised model. name is used in error
// messages only. dataDir is the folder that holds the model's external data
// files; it may be empty when the model has none.
func (rt *Runtime) LoadBytes(ctx context.Context, name string, model []byte, dataDir string) (*Session, error) {
	return rt.LoadBytesWith(ctx, name, model, dataDir, LoadOptions{})
}

// LoadOptions adjust one session's memory use (docs/README.md#train-memory).
type LoadOptions struct {
	// OneWeightCopy turns off onnxruntime's pre-packing of constant
	// matrix-product operands. Pre-packing gives every node that reads a
	// weight its own packed copy, and onnxruntime drops the original only
	// when all its readers packed it; in a training step each weight is
	// read by the forward product, the backward product and the
	// recomputed one, so pre-packing holds the weights three or four
	// times. Without it, the weights are held once and packed as they
	// are used.
	OneWeightCopy bool
}

// LoadBytesWith is LoadBytes with load options.
func (rt *Runtime) LoadBytesWith(ctx context.Context, name string, model []byte, dataDir string, lo LoadOptions) (*Session, error) {
	sig, err := readSignature(model)
	if err != nil {
		return nil, fmt.Errorf("runner: load %s: %w", name, err)
	}
	return rt.load(ctx, name, sig, lo, func(so *ort.SessionOptions, in, out []string) (*ort.DynamicAdvancedSession, error) {
		if dataDir != "" {
			if err := so.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", dataDir); err != nil {
				return nil, fmt.Errorf("external data folder %s: %w", dataDir, err)
			}
		}
		return ort.NewDynamicAdvancedSessionWithONNXData(model, in, out, so)
	})
}

type sessionMaker func(so *ort.SessionOptions, in, out []string) (*ort.DynamicAdvancedSession, error)

func (rt *Runtime) load(ctx context.Context, name string, sig signature, lo LoadOptions, newSess sessionMaker) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("runner: load %s: %w", name, err)
	}
	for _, group := range []struct {
		what  string
		infos []Info
	}{{"input", sig.inputs}, {"output", sig.outputs}} {
		for _, in := range group.infos {
			if in.DType != Float32 && in.DType != Int64 {
				return nil, fmt.Errorf("runner: load %s: %s %q has type %v; the runner exchanges float32 and int64 tensors only (cast inside the graph)", name, group.what, in.Name, in.DType)
			}
			if in.Shape != nil && len(in.Shape) == 0 {
				// onnxruntime_go cannot create or return rank-0 tensors.
				return nil, fmt.Errorf("runner: load %s: %s %q is a scalar; give it shape [1] in the graph", name, group.what, in.Name)
			}
		}
	}
	in, out := names(sig.inputs), names(sig.outputs)

	rt.loading.RLock() // the environment must outlive the session creation
	defer rt.loading.RUnlock()
	rt.mu.Lock()
	closed, provider := rt.closed, rt.provider
	rt.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("runner: load %s: runtime is closed", name)
	}
	s, err := rt.create(provider == ProviderCUDA, lo, in, out, newSess)
	if err != nil && provider == ProviderCUDA && rt.dev.Kind == Auto {
		// Auto: a GPU that configures but cannot create a session (no
		// device, out of memory, unsupported graph) falls back, but only
		// if the CPU accepts the model; otherwise the model is at fault.
		if cpu, cpuErr := rt.create(false, lo, in, out, newSess); cpuErr == nil {
			rt.fallBack(err)
			s, err, provider = cpu, nil, ProviderCPU
		}
	}
	if err != nil {
		return nil, fmt.Errorf("runner: load %s on %s: %w", name, provider, err)
	}
	sess := &Session{rt: rt, name: name, s: s, inputs: sig.inputs, outputs: sig.outputs, metadata: sig.metadata, provider: provider}
	if err := ctx.Err(); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("runner: load %s: %w", name, err)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		s.Destroy()
		return nil, fmt.Errorf("runner: load %s: runtime is closed", name)
	}
	rt.sessions[sess] = struct{}{}
	return sess, nil
}

func (rt *Runtime) create(cuda bool, lo LoadOptions, in, out []string, newSess sessionMaker) (*ort.DynamicAdvancedSession, error) {
	so, err := rt.sessionOptions(cuda, lo)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	return newSess(so, in, out)
}

// Close closes every session still open and releases this Runtime's hold on
// the onnxruntime environment. It waits for loads and runs in progress to
// finish.
func (rt *Runtime) Close() error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	rt.mu.Unlock()
	rt.loading.Lock() // wait for loads in progress; new ones see closed
	defer rt.loading.Unlock()
	rt.mu.Lock()
	open := make([]*Session, 0, len(rt.sessions))
	for s := range rt.sessions {
		open = append(open, s)
	}
	rt.mu.Unlock()
	var errs []error
	for _, s := range open {
		errs = append(errs, s.Close())
	}
	errs = append(errs, releaseEnv())
	return errors.Join(errs...)
}

func (rt *Runtime) forget(s *Session) {
	rt.mu.Lock()
	delete(rt.sessions, s)
	rt.mu.Unlock()
}

func names(infos []Info) []string {
	n := make([]string, len(infos))
	for i, in := range infos {
		n[i] = in.Name
	}
	return n
}

// TrimHeap gives the memory onnxruntime has freed back to the system.
// Closing a session frees its weights and arena, but the C allocator keeps
// freed blocks below its mapping threshold for reuse (a ViT-L text tower's
// weights are hundreds of such blocks), so the process's resident memory
// would not fall. Call it after closing a large session when something
// else large is loaded next. It does nothing where the C library has no
// malloc_trim.
func TrimHeap() { trimHeap() }
