package parallel

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

func TestParallelStopsOnError(t *testing.T) {
	boom := errors.New("boom")
	var ran atomic.Int32
	err := For(context.Background(), 100, 2, func(ctx context.Context, i int) error {
		ran.Add(1)
		switch {
		case i < 3:
			return nil
		case i == 3:
			return boom
		}
		<-ctx.Done() // later calls wait for the cancellation
		return ctx.Err()
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if n := ran.Load(); n > 10 {
		t.Errorf("%d calls ran after the failure", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := For(ctx, 5, 2, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}
