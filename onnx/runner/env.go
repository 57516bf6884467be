package runner

import (
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// env guards onnxruntime's process-wide environment, the one piece of global
// state the runner cannot avoid: onnxruntime_go keeps a single OrtEnv and a
// single dlopen'ed library per process. Every open Runtime holds a reference;
// the library is loaded by the first and unloaded when the last one closes.
// While it is loaded, a Runtime asking for a different library file fails
// rather than silently running on the one already loaded.
var env struct {
	mu   sync.Mutex
	refs int
	lib  string
}

func acquireEnv(lib string) error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.refs > 0 {
		if lib != env.lib {
			return fmt.Errorf("runner: onnxruntime is already loaded from %s in this process; cannot also load %s", env.lib, lib)
		}
		env.refs++
		return nil
	}
	ort.SetSharedLibraryPath(lib)
	// Fatal only: ORT otherwise prints its own coloured copy of every error
	// the runner already returns.
	if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
		return fmt.Errorf("runner: loading onnxruntime from %s: %w; run `make setup` to fetch a working %s library, or set %s", lib, err, ORTVersion, LibraryEnv)
	}
	env.lib = lib
	env.refs = 1
	return nil
}

func releaseEnv() error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.refs == 0 {
		return nil
	}
	env.refs--
	if env.refs > 0 {
		return nil
	}
	env.lib = ""
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("runner: unloading onnxruntime: %w", err)
	}
	return nil
}
