package config

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/seclisten/seclisten/pkg/setting"
)

// DefaultPlainAddr is where plain TCP listens unless told otherwise: the
// address of the classic teaching server, on loopback only.
const DefaultPlainAddr = "127.0.0.1:65432"

// DefaultTLSAddr is where TLS listens unless told otherwise.
const DefaultTLSAddr = "127.0.0.1:8443"

// MaxLineLimit is the largest MaxLine accepted. A line is held in memory
// whole, so this bounds the memory one connection can make the server hold.
const MaxLineLimit = 16 << 20

// Config is everything `seclisten serve` needs.
type Config struct {
	// Addr is the host:port to listen on. Empty means the mode's default.
	Addr string
	// Plain serves plain TCP instead of TLS.
	Plain bool

	// ReloadClosesDenied, at a reload, closes the connections in flight
	// whose client the new policy refuses (a denied CIDR, or a client
	// certificate now revoked or not allowed). Otherwise a connection keeps
	// the policy it was accepted under.
	ReloadClosesDenied bool

	// TLS holds the TLS and client-authentication settings (ignored with Plain).
	TLS TLS
	// ACME holds the automatic-certificate settings.
	ACME ACME
	// Limits holds the per-IP limits and the PROXY protocol settings.
	Limits Limits
	// Bans holds the temporary bans of clients that keep failing.
	Bans Bans
	// Fleet holds the state replicas share in Redis.
	Fleet Fleet

	// Reply is sent, followed by a newline, after every message.
	Reply string
	// Once closes each connection after its first exchange.
	Once bool
	// MaxLine is the longest line accepted, in bytes, without terminator.
	MaxLine int

	// IdleTimeout closes a connection that sends nothing for this long.
	IdleTimeout time.Duration
	// ParkAfter parks a connection whose client sent nothing for this
	// long, with nothing buffered: it waits for its client without a
	// goroutine (Linux; elsewhere it is ignored). Zero: never.
	ParkAfter time.Duration
	// WriteTimeout bounds each write, so a client that stops reading cannot
	// pin replies (and a connection slot) forever.
	WriteTimeout time.Duration
	// MaxConns caps the connections served at once.
	MaxConns int
	// ExitAfter, when above 0, makes the server stop accepting after that
	// many connections, finish them and return, like openssl s_server
	// -naccept.
	ExitAfter int
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration

	// Report answers each line with what the server saw of the connection
	// instead of Reply.
	Report bool
	// RejectLogInterval is how often refused connections are summarised in
	// the log (only tests change it).
	RejectLogInterval time.Duration
	// MetricsAddr serves Prometheus metrics, /healthz and /readyz ("":
	// off).
	MetricsAddr string
	// JSON prints one JSON object per event on stdout instead of text lines.
	JSON bool
	// LogFormat is "text" or "json" (the log on stderr).
	LogFormat string
	// LogLevel is the least important log level written.
	LogLevel slog.Level
}

// Default returns the configuration used when no flag is given.
func Default() Config {
	return Config{
		Reply:             "Message received! Thank you for connecting.",
		MaxLine:           64 << 10,
		IdleTimeout:       2 * time.Minute,
		ParkAfter:         time.Second,
		WriteTimeout:      10 * time.Second,
		MaxConns:          10000,
		ShutdownTimeout:   10 * time.Second,
		RejectLogInterval: 10 * time.Second,
		Limits: Limits{
			Rate:          10,
			Burst:         20,
			MaxConnsPerIP: 32,
			IPv6Prefix:    64,
			MsgRate:       1000,
			MsgBurst:      1000,
			MaxLifetime:   24 * time.Hour,
		},
		Bans: Bans{For: 10 * time.Minute, Max: 24 * time.Hour},
		TLS: TLS{
			MinVersion:       tls.VersionTLS12,
			HandshakeTimeout: 10 * time.Second,
			ClientCertWarn:   14 * 24 * time.Hour,
			CertWarn:         7 * 24 * time.Hour,
			ReloadInterval:   time.Second,
			CRLMaxSize:       16 << 20,
		},
		LogFormat: "text",
		LogLevel:  slog.LevelInfo,
		Fleet:     DefaultFleet(),
	}
}

// ListenAddr is the address to listen on: Addr, or the mode's default.
func (c *Config) ListenAddr() string {
	switch {
	case c.Addr != "":
		return c.Addr
	case c.Plain:
		return DefaultPlainAddr
	}
	return DefaultTLSAddr
}

// ListenPort is the port of ListenAddr (0: any free port), or -1 if it has
// none, an address Validate refuses.
func (c *Config) ListenPort() int {
	_, port, err := net.SplitHostPort(c.ListenAddr())
	if err != nil {
		return -1
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return -1
	}
	return int(n)
}

// Validate checks every field and every rule between fields. Its errors are
// one sentence, a *setting.Error that names each setting by its key: the
// name of its flag without the dashes (`cert` for --cert), which is also
// its key in a configuration file. The front end renders the keys as its
// user knows them.
func (c *Config) Validate() error {
	if errs := c.Problems(); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// Problems is every problem Validate would report, in its order: the
// first problem of each group of settings (TLS, ACME, limits), then each of
// the other rules that fails. Nil means the Config is valid.
func (c *Config) Problems() []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(c.TLS.validate(c.Plain))
	add(c.ACME.validate(c))
	add(c.Limits.validate())
	add(c.Bans.validate())
	add(c.Fleet.validate(c))
	if err := ValidateAddr(c.ListenAddr()); err != nil {
		add(setting.Errorf("`addr`: %w", err))
	}
	if c.MetricsAddr != "" {
		if err := ValidateAddr(c.MetricsAddr); err != nil {
			add(setting.Errorf("`metrics-addr`: %w", err))
		}
	}
	if strings.ContainsAny(c.Reply, "\r\n") {
		add(setting.Errorf("`reply` must be a single line (no CR or LF)"))
	}
	if c.MaxLine < 1 || c.MaxLine > MaxLineLimit {
		add(setting.Errorf("`max-line` must be between 1 byte and %d bytes (16MiB), got %d", MaxLineLimit, c.MaxLine))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"`idle-timeout`", c.IdleTimeout},
		{"`write-timeout`", c.WriteTimeout},
		{"`shutdown-timeout`", c.ShutdownTimeout},
		{"`handshake-timeout`", c.TLS.HandshakeTimeout},
		{"`reject-log-interval`", c.RejectLogInterval},
	} {
		if d.v <= 0 {
			add(setting.Errorf(d.key+" must be a positive duration, got %s", d.v))
		}
	}
	if c.ParkAfter < 0 {
		add(setting.Errorf("`park-after` must be a duration of 0 (never) or more, got %s", c.ParkAfter))
	}
	if c.ExitAfter < 0 {
		add(setting.Errorf("`exit-after` must be a positive number of connections, got %d", c.ExitAfter))
	}
	if c.MaxConns < 1 {
		add(setting.Errorf("`max-conns` must be at least 1, got %d", c.MaxConns))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add(setting.Errorf("`log-format` must be text or json, got %q", c.LogFormat))
	}
	return errs
}

// ValidateAddr checks a listen address: host:port with a numeric port, and a
// host that is empty (all interfaces), an IP address (IPv6 in brackets, zone
// allowed) or a syntactically valid host name. It does no DNS lookup.
func ValidateAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !validHostname(host) {
		return fmt.Errorf("%q: %q is neither an IP address nor a host name", addr, host)
	}
	return nil
}

// validHostname reports whether s is a host name by RFC 1123 section 2.1:
// dot-separated labels of letters, digits and inner hyphens, each 1 to 63
// bytes, 253 in all.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
