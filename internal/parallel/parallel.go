// Package parallel runs independent pieces of work on a bounded number of
// goroutines: categories of a dataset, images of a batch, samples of a scan.
// One helper, so that cancellation and first-error semantics are the same
// everywhere.
package parallel

import (
	"context"
	"runtime"
	"sync"
)

// For runs fn(ctx, i) for i in [0, n) on at most workers goroutines
// (GOMAXPROCS when workers ≤ 0). The first error cancels the context passed
// to the other calls and is returned; calls not yet started are skipped.
// When ctx is cancelled first, its error is returned.
func For(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
