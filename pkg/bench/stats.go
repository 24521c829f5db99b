package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"syscall"
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
	kinds             map[string]int64
	firstErr          error
	lat               reservoir
	tls               string
}

func newStats(maxSamples int, seed uint64) *stats {
	return &stats{kinds: map[string]int64{}, lat: newReservoir(maxSamples, seed)}
}

// fail counts an error of a phase (dial, tls handshake, write, read).
func (s *stats) fail(phase string, err error) {
	s.errors++
	s.kinds[phase+": "+errorKind(err)]++
	if s.firstErr == nil {
		if phase != "dial" { // net's dial errors already say "dial tcp"
			err = fmt.Errorf("%s: %w", phase, err)
		}
		s.firstErr = err
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

// errorKind is a short, low-cardinality name for err, to count errors by.
func errorKind(err error) string {
	var ne net.Error
	var alert tls.AlertError
	var verr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "address not available"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed by peer"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &alert):
		return "tls alert: " + alert.Error()
	case errors.As(err, &verr):
		return "certificate not verified"
	}
	return "other"
}

// isRefusal reports whether err means the server closed or reset the
// connection: how a server refuses a connection it will not serve.
func isRefusal(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
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
		for k, n := range s.kinds {
			if r.ErrorKinds == nil {
				r.ErrorKinds = map[string]int64{}
			}
			r.ErrorKinds[k] += n
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
		return fmt.Errorf("no connection succeeded: %w", firstErr)
	}
	return nil
}
