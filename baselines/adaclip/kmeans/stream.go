package kmeans

import (
	"fmt"
	"sync"
)

// snapEvery is how many fits apart Stream keeps generator states.
const snapEvery = 64

// Stream gives the draws of the n-th fit (0-based) of a process whose
// global generator was seeded once and then consumed fit after fit, as
// numpy's global RandomState is by every KMeans call of the official
// test.py or train.py (docs/methods.md#adaclip-kmeans-seeding). Every fit
// of a stream must have the same sample count and options, so that each
// consumes the same kind of draws; that is what makes the position of
// the n-th fit computable without running the fits before it. Safe for
// concurrent use.
type Stream struct {
	seed uint32
	n    int
	o    Options

	mu    sync.Mutex
	snaps []MT19937 // snaps[i]: the generator before fit i·snapEvery
}

// NewStream is the stream of np.random.seed(seed) for fits of n samples.
func NewStream(seed uint32, n int, o Options) *Stream {
	return &Stream{seed: seed, n: n, o: o, snaps: []MT19937{*NewMT19937(seed)}}
}

// At returns the draws of fit i.
func (s *Stream) At(i int) (Draws, error) {
	if i < 0 {
		return Draws{}, fmt.Errorf("kmeans: fit %d of a stream", i)
	}
	s.mu.Lock()
	for len(s.snaps) <= i/snapEvery {
		g := s.snaps[len(s.snaps)-1]
		for range snapEvery {
			Draw(&g, s.n, s.o)
		}
		s.snaps = append(s.snaps, g)
	}
	g := s.snaps[i/snapEvery]
	s.mu.Unlock()
	for range i % snapEvery {
		Draw(&g, s.n, s.o)
	}
	return Draw(&g, s.n, s.o), nil
}
