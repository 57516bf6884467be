package bench

import (
	"context"
	"errors"
	"testing"
)

// TestBatchesReady checks the scoring stage's view of the stream: ready
// hands out only completed batches of the asked category, and a batch of
// the next category or one carrying an error waits for next, in order.
func TestBatchesReady(t *testing.T) {
	ctx := context.Background()
	ch := make(chan ahead, 4)
	boom := errors.New("boom")
	ch <- ahead{cat: 0, start: 0}
	ch <- ahead{cat: 0, start: 1}
	ch <- ahead{cat: 1, start: 0}
	ch <- ahead{cat: 1, start: 1, err: boom}
	close(ch)
	s := &batches{ch: ch}
	if a, ok, err := s.next(ctx); !ok || err != nil || a.cat != 0 || a.start != 0 {
		t.Fatalf("next: %+v %v %v", a, ok, err)
	}
	if a, ok := s.ready(0); !ok || a.start != 1 {
		t.Fatalf("ready(0): %+v %v, want the second batch of category 0", a, ok)
	}
	if a, ok := s.ready(0); ok {
		t.Fatalf("ready(0) handed out %+v of category %d", a, a.cat)
	}
	if a, ok := s.ready(0); ok {
		t.Fatalf("ready(0) again handed out %+v", a)
	}
	if a, ok, err := s.next(ctx); !ok || err != nil || a.cat != 1 || a.start != 0 {
		t.Fatalf("next after the held batch: %+v %v %v", a, ok, err)
	}
	if a, ok := s.ready(1); ok {
		t.Fatalf("ready(1) handed out a batch with an error: %+v", a)
	}
	if a, ok, _ := s.next(ctx); !ok || !errors.Is(a.err, boom) {
		t.Fatalf("next: %+v %v, want the failed batch", a, ok)
	}
	if _, ok := s.ready(1); ok {
		t.Fatal("ready after the end of the stream")
	}
	if _, ok, err := s.next(ctx); ok || err != nil {
		t.Fatalf("next after the end: %v %v", ok, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := (&batches{ch: make(chan ahead)}).next(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("next on a cancelled context: %v", err)
	}
}
