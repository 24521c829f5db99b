package bench

import (
	"crypto/tls"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"time"
)

// reservoir keeps a uniform sample of at most max latencies (Algorithm R),
// so a long run keeps flat memory.
type reservoir struct {
	max  int
	seen int64
	s    []time.Duration
	rng  *rand.Rand
}

func newReservoir(max int, seed uint64) reservoir {
	return reservoir{max: max, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
}

func (v *reservoir) add(d time.Duration) {
	v.seen++
	if len(v.s) < v.max {
		v.s = append(v.s, d)
		return
	}
	if j := v.rng.Int64N(v.seen); j < int64(v.max) {
		v.s[j] = d
	}
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted,
// or zero if sorted is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(n))) - 1
	return sorted[max(0, min(i, n-1))]
}

// stats are one worker's counts, merged at the end of a run, so the hot
// loops share nothing but two atomic counters for the progress line.
type stats struct {
	ops, errors       int64
	resumed           int64
	accepted, refused int64
	failures          map[Failure]int64
	firstErr          error
	lat               reservoir
	tls               string
}

func newStats(maxSamples int, seed uint64) *stats {
	return &stats{failures: map[Failure]int64{}, lat: newReservoir(maxSamples, seed)}
}

// fail counts a failed operation.
func (s *stats) fail(e *opError) {
	s.errors++
	s.failures[e.f]++
	if s.firstErr == nil {
		s.firstErr = e
	}
}

// noteTLS records the parameters of the first TLS connection.
func (s *stats) noteTLS(c net.Conn) {
	if s.tls != "" {
		return
	}
	tc, ok := c.(*tls.Conn)
	if !ok {
		return
	}
	cs := tc.ConnectionState()
	s.tls = tls.VersionName(cs.Version) + " " + tls.CipherSuiteName(cs.CipherSuite)
	if cs.CurveID != 0 {
		s.tls += " " + cs.CurveID.String()
	}
}

// merge adds the workers' stats into r.
func merge(r *Result, all []*stats) error {
	var samples []time.Duration
	var firstErr error
	for _, s := range all {
		r.Ops += s.ops
		r.Errors += s.errors
		r.Resumed += s.resumed
		r.Accepted += s.accepted
		r.Refused += s.refused
		for f, n := range s.failures {
			if r.Failures == nil {
				r.Failures = map[Failure]int64{}
			}
			r.Failures[f] += n
		}
		if firstErr == nil {
			firstErr = s.firstErr
		}
		if r.TLS == "" {
			r.TLS = s.tls
		}
		samples = append(samples, s.lat.s...)
	}
	slices.Sort(samples)
	r.Samples = len(samples)
	r.P50 = percentile(samples, 50)
	r.P99 = percentile(samples, 99)
	if r.Ops == 0 && firstErr != nil {
		return fmt.Errorf("%w: %w", ErrNoSuccess, firstErr)
	}
	return nil
}
