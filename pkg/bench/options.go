package bench

import (
	"crypto/tls"
	"fmt"
	"math"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/seclisten/seclisten/pkg/setting"
)

// Mode is what a run measures.
type Mode string

// The modes of Run.
const (
	// Handshake measures full TLS handshakes per second: dial, handshake,
	// close, with no session resumption.
	Handshake Mode = "handshake"
	// Resume measures handshakes resumed from a session ticket.
	Resume Mode = "resume"
	// Echo measures line round trips on persistent connections.
	Echo Mode = "echo"
	// Idle opens connections, holds them, and measures the server's memory
	// per connection.
	Idle Mode = "idle"
	// Flood opens connections as fast as possible and counts how many the
	// server accepts and how many it refuses.
	Flood Mode = "flood"
	// Line measures short-lived connections that carry one message:
	// connect, handshake, send one line, read the reply, close (no session
	// resumption).
	Line Mode = "line"
)

// Modes lists every Mode, in the order the help shows them.
var Modes = []Mode{Handshake, Resume, Echo, Idle, Flood, Line}

// Defaults for the zero values of Options.
const (
	DefaultDuration = 10 * time.Second
	DefaultMaxOps   = 1_000_000
	DefaultConns    = 100
	DefaultTimeout  = 5 * time.Second
	DefaultMessage  = "ping"
	// MaxSamples bounds the latency samples kept (reservoir sampling
	// beyond it), so memory stays flat however long a run is.
	MaxSamples = 1_000_000
	// DefaultMaxErrorRate is the Result.ErrorRate above which a run
	// should count as failed: a few errors are noise on a loaded machine,
	// more mean the figures do not measure what was asked.
	DefaultMaxErrorRate = 0.01
)

// DefaultConcurrency is the number of workers of the handshake, resume and
// flood modes when Options.Concurrency is zero: two per CPU, enough to keep
// the CPUs busy while some workers wait on the network.
func DefaultConcurrency() int { return 2 * runtime.GOMAXPROCS(0) }

// Options configures Run. Only Addr is required; every zero value means a
// documented default.
type Options struct {
	// Mode is what to measure. Empty means Handshake.
	Mode Mode
	// Addr is the server's HOST:PORT.
	Addr string
	// Plain speaks plain TCP instead of TLS. Resume needs TLS, and so do
	// TLSVersion, Groups, CertFile, CAFile and ServerName.
	Plain bool
	// Duration bounds the run (for echo and idle: the measuring or holding
	// phase, after at most as long again to open the connections). Zero
	// means DefaultDuration.
	Duration time.Duration
	// MaxOps bounds the number of operations started. Zero means
	// DefaultMaxOps.
	MaxOps int64
	// Concurrency is the number of workers (handshake, resume, flood, line) or of
	// connections opened at once (echo, idle). Zero means
	// DefaultConcurrency().
	Concurrency int
	// Conns is the number of connections of echo and idle. Zero means
	// DefaultConns.
	Conns int
	// Timeout bounds each dial, handshake and exchange. Zero means
	// DefaultTimeout.
	Timeout time.Duration

	// TLSVersion pins the TLS version (tls.VersionTLS12 or VersionTLS13).
	// Zero means TLS 1.2 or 1.3, as negotiated.
	TLSVersion uint16
	// Groups are the key exchange groups offered, in order. Nil means Go's
	// defaults.
	Groups []tls.CurveID
	// CertFile and KeyFile are a client certificate and its key (PEM).
	// Empty means none.
	CertFile, KeyFile string
	// CAFile holds the CAs (PEM) that verify the server. Empty means the
	// server's certificate is not verified: a benchmark measures, it does
	// not trust what it reads.
	CAFile string
	// ServerName is the SNI name (and the name verified with CAFile).
	// Empty means the host of Addr.
	ServerName string

	// Sources are the local addresses to dial from, in turn. Nil means the
	// system chooses.
	Sources []netip.Addr
	// Message is the line sent (without its newline). Empty means
	// DefaultMessage.
	Message string
	// PID is the server's process ID: idle reads its VmRSS from
	// /proc/PID/status before and after opening the connections. Zero means
	// no memory figures.
	PID int
	// Interactive writes progress as one line updated in place (for a
	// terminal) instead of one line per second.
	Interactive bool
}

// ParseMode parses a mode name.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if strings.EqualFold(strings.TrimSpace(s), string(m)) {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown mode %q: want handshake, resume, echo, idle, flood or line", s)
}

// ParseTLSVersion parses "1.2" or "1.3"; empty means zero (negotiated).
func ParseTLSVersion(s string) (uint16, error) {
	switch strings.TrimSpace(s) {
	case "":
		return 0, nil
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("TLS version %q: want 1.2 or 1.3", s)
}

// groupNames are the key exchange groups ParseGroups knows.
var groupNames = map[string]tls.CurveID{
	"x25519":            tls.X25519,
	"x25519mlkem768":    tls.X25519MLKEM768,
	"secp256r1mlkem768": tls.SecP256r1MLKEM768,
	"p256":              tls.CurveP256,
	"p-256":             tls.CurveP256,
	"p384":              tls.CurveP384,
	"p-384":             tls.CurveP384,
	"p521":              tls.CurveP521,
	"p-521":             tls.CurveP521,
}

// ParseGroups parses a comma-separated list of key exchange groups
// (X25519, X25519MLKEM768, P256, P384, P521); empty means nil.
func ParseGroups(s string) ([]tls.CurveID, error) {
	var out []tls.CurveID
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		id, ok := groupNames[strings.ToLower(name)]
		if !ok {
			return nil, fmt.Errorf("unknown group %q: want X25519, X25519MLKEM768, P256, P384 or P521", name)
		}
		out = append(out, id)
	}
	return out, nil
}

// ParseFraction parses a share, such as an acceptable error rate: a
// percentage (1%, 0.5%, 100%) or a fraction below 1 (0.01). A bare 1 is
// refused as ambiguous (1% or 100%?).
func ParseFraction(s string) (float64, error) {
	num, pct := strings.CutSuffix(strings.TrimSpace(s), "%")
	num = strings.TrimSpace(num)
	x, err := strconv.ParseFloat(num, 64)
	switch {
	case err != nil || math.IsNaN(x) || math.IsInf(x, 0):
		return 0, fmt.Errorf("%q is not a percentage (1%%) or a fraction (0.01)", s)
	case x < 0:
		return 0, fmt.Errorf("%q is negative", s)
	case pct && x > 100:
		return 0, fmt.Errorf("%q is more than 100%%", s)
	case pct:
		return x / 100, nil
	case x == 1:
		return 0, fmt.Errorf("%q is ambiguous: write 1%% or 100%%", s)
	case x > 1:
		return 0, fmt.Errorf("%q is more than 1: write %s%% for a percentage", s, num)
	}
	return x, nil
}

// ParseSources parses a comma-separated list of local IP addresses.
func ParseSources(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for a := range strings.SplitSeq(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("source %q is not an IP address", a)
		}
		out = append(out, ip)
	}
	return out, nil
}

// Validate checks the options. Its errors are one sentence, a
// *setting.Error that names each option by its field (`CertFile`), for a
// front end to word as its user knows the option.
func (o Options) Validate() error {
	if o.Mode != "" {
		if _, err := ParseMode(string(o.Mode)); err != nil {
			return setting.Errorf("`Mode`: %w", err)
		}
	}
	if o.Addr == "" {
		return setting.Errorf("`Addr` is required: the HOST:PORT of the server to measure")
	}
	host, port, err := net.SplitHostPort(o.Addr)
	if err != nil || host == "" {
		return setting.Errorf("`Addr`: %q is not host:port", o.Addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return setting.Errorf("`Addr`: %q: port %q is not a number from 1 to 65535", o.Addr, port)
	}
	switch {
	case o.Duration < 0:
		return setting.Errorf("`Duration` must be positive, got %s", o.Duration)
	case o.MaxOps < 0:
		return setting.Errorf("`MaxOps` must be positive, got %d", o.MaxOps)
	case o.Concurrency < 0:
		return setting.Errorf("`Concurrency` must be positive, got %d", o.Concurrency)
	case o.Conns < 0:
		return setting.Errorf("`Conns` must be positive, got %d", o.Conns)
	case o.Timeout < 0:
		return setting.Errorf("`Timeout` must be positive, got %s", o.Timeout)
	case o.PID < 0:
		return setting.Errorf("`PID` must be a process ID, got %d", o.PID)
	case strings.ContainsAny(o.Message, "\r\n"):
		return setting.Errorf("`Message` must be one line")
	case o.Plain && (o.TLSVersion != 0 || len(o.Groups) > 0 || o.CertFile != "" || o.CAFile != "" || o.ServerName != ""):
		return setting.Errorf("`TLSVersion`, `Groups`, `CertFile`, `CAFile` and `ServerName` need TLS: drop `Plain`")
	case (o.CertFile == "") != (o.KeyFile == ""):
		return setting.Errorf("`CertFile` and `KeyFile` go together")
	case o.Mode == Resume && o.Plain:
		return setting.Errorf("`Mode` resume needs TLS: drop `Plain`")
	case o.TLSVersion != 0 && o.TLSVersion != tls.VersionTLS12 && o.TLSVersion != tls.VersionTLS13:
		return setting.Errorf("`TLSVersion`: unsupported version %#x", o.TLSVersion)
	}
	if o.TLSVersion == tls.VersionTLS12 {
		for _, g := range o.Groups {
			if g == tls.X25519MLKEM768 || g == tls.SecP256r1MLKEM768 {
				return setting.Errorf("`Groups` %s needs TLS 1.3", g)
			}
		}
	}
	return nil
}

// withDefaults fills in the zero values.
func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = Handshake
	}
	if m, err := ParseMode(string(o.Mode)); err == nil {
		o.Mode = m
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.MaxOps == 0 {
		o.MaxOps = DefaultMaxOps
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency()
	}
	if o.Conns == 0 {
		o.Conns = DefaultConns
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Message == "" {
		o.Message = DefaultMessage
	}
	if o.ServerName == "" {
		o.ServerName, _, _ = net.SplitHostPort(o.Addr)
	}
	return o
}
