// Package runner runs ONNX graphs with onnxruntime, through
// github.com/yalue/onnxruntime_go, on the CPU or a CUDA GPU.
//
// One Runtime per process is the normal use: Open picks the device, Load
// creates one Session per graph, and Session.Run may be called from many
// goroutines at once with any batch size the graph's symbolic dimensions
// allow. Graphs exchange float32 and int64 tensors; a graph that computes in
// float16 casts at its inputs and outputs, because onnxruntime_go cannot
// return float16 outputs whose shape is not known in advance.
//
// # Devices
//
// --device takes auto, cpu, cuda or cuda:N. auto tries CUDA and, if the
// provider cannot be configured or cannot create a session, logs one warning
// and runs on the CPU. An explicit cuda that cannot start is an error. The
// provider actually used is reported by Session.Provider for results files.
//
// The CPU library that `make setup` unpacks from the npm package
// onnxruntime-node 1.24.1 has no CUDA provider libraries: onnxruntime looks
// for libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so
// beside libonnxruntime.so.1, so with it auto falls back and cuda fails with
// "Failed to load library …/libonnxruntime_providers_shared.so". A GPU run
// needs an onnxruntime 1.24 GPU build (CUDA 12, cuDNN 9) placed in one
// folder and named by ONNXRUNTIME_LIB. To check a GPU machine:
//
//	ONNXRUNTIME_LIB=/path/to/gpu/libonnxruntime.so.1 \
//	  go test ./onnx/runner -run CUDA -v -args -device=cuda
//
// With -device the CUDA tests fail unless the graphs really run on CUDA and
// match the Go reference values.
//
// # The library and the process-wide environment
//
// The shared library is found by FindLibrary: ONNXRUNTIME_LIB, else the
// `make setup` cache .cache/onnxruntime-1.24.1/libonnxruntime.so.1 in the
// module root, else next to the executable. onnxruntime_go keeps one
// environment per process, so the runner reference-counts it: the first
// Open loads the library, the last Close unloads it, and all Runtimes that
// are open together must use the same library file. This is the package's
// only global state. onnxruntime's own logging is limited to fatal messages
// because every error already comes back to the caller.
//
// # Threads
//
// Each session gets GOMAXPROCS intra-op threads (Options.Threads overrides)
// and one inter-op thread, with spinning off so that idle onnxruntime threads
// do not take CPU time from image decoding and scoring in Go.
package runner
