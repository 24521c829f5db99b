package config_test

import (
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/setting"
)

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    int64
		wantErr string // a substring of the error; empty means success
	}{
		{"65536", 65536, ""},
		{"64KiB", 64 << 10, ""},
		{"64K", 64 << 10, ""},
		{"64kb", 64 << 10, ""},
		{"64KB", 64 << 10, ""},
		{"64kib", 64 << 10, ""},
		{"64k", 64 << 10, ""},
		{"1MiB", 1 << 20, ""},
		{"1M", 1 << 20, ""},
		{"1mb", 1 << 20, ""},
		{"1 MiB", 1 << 20, ""},
		{" 2KiB ", 2 << 10, ""},
		{"\t16\n", 16, ""},
		{"1GiB", 1 << 30, ""},
		{"3G", 3 << 30, ""},
		{"12B", 12, ""},
		{"12b", 12, ""},
		{"0", 0, ""},
		{"0KiB", 0, ""},
		{"007", 7, ""},
		{"4294967296GiB", 1 << 62, ""}, // the largest size: 2^32 GiB
		{"4611686018427387904", 1 << 62, ""},
		{"-1", 0, "is not a size"},
		{"-1KiB", 0, "is not a size"},
		{"+5", 0, "is not a size"},
		{"+5K", 0, "is not a size"},
		{"", 0, "is not a size"},
		{"   ", 0, "is not a size"},
		{"KiB", 0, "is not a size"},
		{"K", 0, "is not a size"},
		{"B", 0, "is not a size"},
		{" KiB", 0, "is not a size"},
		{"1.5M", 0, "is not a size"},
		{"1e3", 0, "is not a size"},
		{"0x10", 0, "is not a size"},
		{"1_000", 0, "is not a size"},
		{"64 K iB", 0, "is not a size"},
		{"64KiBKiB", 0, "is not a size"},
		{"64TB", 0, "is not a size"},
		{"sixty", 0, "is not a size"},
		{"1\u212aB", 0, "is not a size"}, // Kelvin sign, not K
		{"99999999999GiB", 0, "too large"},
		{"4294967297GiB", 0, "too large"},
		{"4611686018427387905", 0, "too large"},
		{"9223372036854775807", 0, "too large"},
		{"9223372036854775808", 0, "is not a size"},
		{"99999999999999999999999", 0, "is not a size"},
	} {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := config.ParseSize(tt.in)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("ParseSize(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSize(%q) = %d, want an error containing %q", tt.in, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSize(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
				t.Errorf("ParseSize(%q) error = %q, want it to quote the input", tt.in, err)
			}
			if got != 0 {
				t.Errorf("ParseSize(%q) = %d with an error, want 0", tt.in, got)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"30s", 30 * time.Second, ""},
		{"2m", 2 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{" 10s ", 10 * time.Second, ""},
		{"1.5s", 1500 * time.Millisecond, ""},
		{"0s", 0, ""}, // Validate refuses it, not the parser
		{"-5s", -5 * time.Second, ""},
		{"5", 0, "no unit"},
		{"0", 0, ""}, // time.ParseDuration accepts a bare 0
		{"1.5", 0, "no unit"},
		{" 30 ", 0, "no unit"},
		{"abc", 0, "not a duration"},
		{"", 0, "not a duration"},
		{"5 s", 0, "not a duration"},
		{"5x", 0, "not a duration"},
		{"14d", 14 * 24 * time.Hour, ""},
		{"1d12h", 36 * time.Hour, ""},
		{" 0d ", 0, ""},
		{"d", 0, "not a duration"},
		{"1.5d", 0, "not a duration"},
		{"-1d", 0, "not a duration"},
		{"99999d", 0, "not a duration"},
		{"1d1d", 0, "not a duration"},
	} {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := config.ParseDuration(tt.in)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("ParseDuration(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, want an error containing %q", tt.in, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDuration(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseDurationSuggestsUnit(t *testing.T) {
	_, err := config.ParseDuration("5")
	if err == nil || !strings.Contains(err.Error(), "5s") {
		t.Errorf("ParseDuration(\"5\") error = %v, want a hint like 5s", err)
	}
}

func TestParseLevel(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"info", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"warning", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"DEBUG", slog.LevelDebug, false},
		{"Info", slog.LevelInfo, false},
		{" warn\n", slog.LevelWarn, false},
		{"", 0, true},
		{"trace", 0, true},
		{"fatal", 0, true},
		{"-4", 0, true},
		{"err", 0, true},
	} {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := config.ParseLevel(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseLevel(%q) = %v, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
					t.Errorf("ParseLevel(%q) error = %q, want it to quote the input", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseLevel(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestValidateAddr(t *testing.T) {
	for _, tt := range []struct {
		addr    string
		wantErr string // substring; empty means valid
	}{
		{":443", ""},
		{":0", ""},
		{"127.0.0.1:0", ""},
		{"127.0.0.1:65535", ""},
		{"0.0.0.0:80", ""},
		{"[::1]:8443", ""},
		{"[::]:1", ""},
		{"[fe80::1%eth0]:1", ""},
		{"[::ffff:1.2.3.4]:1", ""},
		{"localhost:1", ""},
		{"example.com:443", ""},
		{"example.com.:443", ""},
		{"a-b.example:1", ""},
		{"xn--nxasmq6b.example:1", ""},
		{strings.Repeat("a", 63) + ".com:1", ""},
		{"127.0.0.1", "not host:port"},
		{"", "not host:port"},
		{"::1:80", "not host:port"},
		{"[::1]", "not host:port"},
		{"host:99999", "not a number from 0 to 65535"},
		{"host:65536", "not a number from 0 to 65535"},
		{"host:abc", "not a number from 0 to 65535"},
		{"host:", "not a number from 0 to 65535"},
		{"host:-1", "not a number from 0 to 65535"},
		{"host:+1", "not a number from 0 to 65535"},
		{"host: 1", "not a number from 0 to 65535"},
		{"bad host:1", "neither an IP address nor a host name"},
		{"-a.com:1", "neither an IP address nor a host name"},
		{"a-.com:1", "neither an IP address nor a host name"},
		{"a..com:1", "neither an IP address nor a host name"},
		{".:1", "neither an IP address nor a host name"},
		{"a_b.com:1", "neither an IP address nor a host name"},
		{"exämple.com:1", "neither an IP address nor a host name"},
		{"host\x00:1", "neither an IP address nor a host name"},
		{strings.Repeat("a", 64) + ".com:1", "neither an IP address nor a host name"},
		{strings.Repeat("a.", 126) + "a:1", ""},                                       // 253-byte name
		{strings.Repeat("a.", 126) + "a.:1", ""},                                      // and its root dot
		{strings.Repeat("a.", 126) + "ab:1", "neither an IP address nor a host name"}, // 254 bytes
		{"[1.2.3.4%eth0]:1", "neither an IP address nor a host name"},
		{"[fe80::1%]:1", "neither an IP address nor a host name"},
	} {
		t.Run(strconv.Quote(tt.addr), func(t *testing.T) {
			err := config.ValidateAddr(tt.addr)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("ValidateAddr(%q) = %v, want nil", tt.addr, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateAddr(%q) = nil, want an error containing %q", tt.addr, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ValidateAddr(%q) = %q, want it to contain %q", tt.addr, err, tt.wantErr)
			}
		})
	}
}

func validConfig() config.Config {
	c := config.Default()
	c.Plain = true
	return c
}

func TestDefaultValidates(t *testing.T) {
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() with Plain: Validate() = %v", err)
	}
	if got := c.ListenAddr(); got != config.DefaultPlainAddr {
		t.Errorf("ListenAddr() = %q, want %q", got, config.DefaultPlainAddr)
	}
	if err := config.ValidateAddr(config.DefaultPlainAddr); err != nil {
		t.Errorf("DefaultPlainAddr: %v", err)
	}
	if c.LogFormat != "text" || c.LogLevel != slog.LevelInfo || c.JSON || c.Once {
		t.Errorf("Default() = %+v: unexpected log or output settings", c)
	}
	if strings.ContainsAny(c.Reply, "\r\n") || c.Reply == "" {
		t.Errorf("Default().Reply = %q", c.Reply)
	}
}

func TestListenAddr(t *testing.T) {
	c := validConfig()
	c.Addr = "[::1]:9"
	if got := c.ListenAddr(); got != "[::1]:9" {
		t.Errorf("ListenAddr() = %q, want the Addr", got)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		edit    func(c *config.Config)
		wantErr string // substring; empty means valid
	}{
		{"default", func(c *config.Config) {}, ""},
		{"max line 1", func(c *config.Config) { c.MaxLine = 1 }, ""},
		{"max line at limit", func(c *config.Config) { c.MaxLine = config.MaxLineLimit }, ""},
		{"max conns 1", func(c *config.Config) { c.MaxConns = 1 }, ""},
		{"json log", func(c *config.Config) { c.LogFormat = "json" }, ""},
		{"empty reply", func(c *config.Config) { c.Reply = "" }, ""},
		{"reply with escapes", func(c *config.Config) { c.Reply = "ok\x1b[0m\t" }, ""},
		{"addr ipv6", func(c *config.Config) { c.Addr = "[::1]:0" }, ""},
		{"one nanosecond", func(c *config.Config) { c.IdleTimeout = 1 }, ""},
		{"bad addr", func(c *config.Config) { c.Addr = "nope" }, "`addr`:"},
		{"bad port", func(c *config.Config) { c.Addr = "localhost:70000" }, "`addr`:"},
		{"reply with LF", func(c *config.Config) { c.Reply = "a\nb" }, "`reply`"},
		{"reply with CR", func(c *config.Config) { c.Reply = "a\rb" }, "`reply`"},
		{"reply ending CRLF", func(c *config.Config) { c.Reply = "ok\r\n" }, "`reply`"},
		{"max line 0", func(c *config.Config) { c.MaxLine = 0 }, "`max-line`"},
		{"max line negative", func(c *config.Config) { c.MaxLine = -1 }, "`max-line`"},
		{"max line over limit", func(c *config.Config) { c.MaxLine = config.MaxLineLimit + 1 }, "`max-line`"},
		{"idle timeout 0", func(c *config.Config) { c.IdleTimeout = 0 }, "`idle-timeout`"},
		{"idle timeout negative", func(c *config.Config) { c.IdleTimeout = -time.Second }, "`idle-timeout`"},
		{"write timeout 0", func(c *config.Config) { c.WriteTimeout = 0 }, "`write-timeout`"},
		{"write timeout negative", func(c *config.Config) { c.WriteTimeout = -1 }, "`write-timeout`"},
		{"shutdown timeout 0", func(c *config.Config) { c.ShutdownTimeout = 0 }, "`shutdown-timeout`"},
		{"shutdown timeout negative", func(c *config.Config) { c.ShutdownTimeout = -time.Minute }, "`shutdown-timeout`"},
		{"max conns 0", func(c *config.Config) { c.MaxConns = 0 }, "`max-conns`"},
		{"max conns negative", func(c *config.Config) { c.MaxConns = -3 }, "`max-conns`"},
		{"log format xml", func(c *config.Config) { c.LogFormat = "xml" }, "`log-format`"},
		{"log format empty", func(c *config.Config) { c.LogFormat = "" }, "`log-format`"},
		{"log format upper", func(c *config.Config) { c.LogFormat = "JSON" }, "`log-format`"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.wantErr)
			}
			// Errors are one sentence naming settings by key, for the
			// front end to render: one line, no final period.
			if msg := err.Error(); strings.ContainsAny(msg, "\n") || strings.HasSuffix(msg, ".") {
				t.Errorf("Validate() = %q: not one sentence without a final period", msg)
			}
			if _, ok := err.(*setting.Error); !ok {
				t.Errorf("Validate() = %T, want a *setting.Error", err)
			}
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"65536", "64KiB", "64k", "1 MiB", "0", "-1", "+5", "", "KiB",
		"99999999999GiB", "1.5M", "4294967296GiB", "12B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := config.ParseSize(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseSize(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 0 || n > 1<<62 {
			t.Fatalf("ParseSize(%q) = %d, out of range", s, n)
		}
		plain := strconv.FormatInt(n, 10)
		back, err := config.ParseSize(plain)
		if err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d, but ParseSize(%q) = %d, %v", s, n, plain, back, err)
		}
		// A multiple of a unit parses the same written with that unit.
		for _, u := range []struct {
			suffix string
			mult   int64
		}{{"KiB", 1 << 10}, {"M", 1 << 20}, {"GB", 1 << 30}} {
			if n%u.mult == 0 {
				with := strconv.FormatInt(n/u.mult, 10) + u.suffix
				if back, err := config.ParseSize(with); err != nil || back != n {
					t.Fatalf("ParseSize(%q) = %d, but ParseSize(%q) = %d, %v", s, n, with, back, err)
				}
			}
		}
	})
}

func FuzzValidateAddr(f *testing.F) {
	for _, s := range []string{":443", "127.0.0.1:0", "[::1]:8443", "[fe80::1%eth0]:1", "localhost:1",
		"127.0.0.1", "host:99999", "host:abc", "bad host:1", "-a.com:1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if config.ValidateAddr(addr) != nil {
			return
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("ValidateAddr(%q) = nil, but SplitHostPort fails: %v", addr, err)
		}
		if strings.Trim(port, "0123456789") != "" || port == "" {
			t.Fatalf("ValidateAddr(%q) = nil with port %q", addr, port)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			t.Fatalf("ValidateAddr(%q) = nil with port %q: %v", addr, port, err)
		}
		if host == "" {
			return
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return
		}
		// Otherwise a host name: letters, digits, hyphens and dots only.
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("ValidateAddr(%q) = nil with host %q holding %q", addr, host, c)
			}
		}
		if len(strings.TrimSuffix(host, ".")) > 253 {
			t.Fatalf("ValidateAddr(%q) = nil with a %d-byte host name", addr, len(host))
		}
	})
}

// ParseDuration never panics, and what it accepts is what it says.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "14d", "1d12h", "0", "5", "-1d", "d", "99999d", "1d1d", " 2m ", "1.5s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := config.ParseDuration(s)
		if err == nil && d < 0 && !strings.Contains(s, "-") {
			t.Errorf("ParseDuration(%q) = %v: negative without a minus sign", s, d)
		}
	})
}
