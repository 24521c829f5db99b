package server

import (
	"fmt"
	"strings"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/outcome"
)

// alertAccessDenied is a cleartext TLS alert record: fatal (2),
// access_denied (49), RFC 8446 section 6.2. It is what a refused client is
// sent on a TLS port before the close, so `openssl s_client` prints
// "tlsv1 alert access denied" rather than "unexpected eof". The record
// version 0x0303 is what TLS 1.2 and 1.3 records carry (RFC 8446 section
// 5.1).
var alertAccessDenied = []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31}

// refusal describes an admission refusal: the limit or list that refused,
// and the line a plain-TCP client is sent.
type refusal struct {
	limit string
	line  []byte
	// attrs are the log attributes of the refusal (the limit, the flags),
	// made once so that a refusal under a flood allocates nothing.
	attrs []any
}

// refusals describes every admission refusal under the limits l and the
// bans b, once at start (and at each reload), so a refusal on the hot path
// only looks its description up. flags names what governs an outcome, if
// it is set.
func refusals(l config.Limits, b config.Bans, limiterEntries int, flags func(outcome.Code) string) map[outcome.Code]refusal {
	m := refusalTexts(l, limiterEntries)
	m[outcome.Banned] = refusal{
		limit: fmt.Sprintf("%d failures in %s, banned for %s doubling to %s", b.After, b.Window, b.For, b.Max),
		line:  []byte("error: refused: your address is banned for a while after repeated failures; try again later\n"),
	}
	for c, r := range m {
		r.attrs = []any{"limit", r.limit}
		if f := flagsOf(flags, c); f != "" {
			r.attrs = append(r.attrs, "flags", f)
		}
		m[c] = r
	}
	return m
}

func refusalTexts(l config.Limits, limiterEntries int) map[outcome.Code]refusal {
	line := func(why string) []byte { return []byte("error: refused: " + why + "\n") }
	return map[outcome.Code]refusal{
		outcome.Rate: {
			limit: fmt.Sprintf("%g/s, burst %d", l.Rate, l.Burst),
			line:  line("too many connections from your address (rate limit); try again later"),
		},
		outcome.PerIPCap: {
			limit: fmt.Sprintf("%d at once", l.MaxConnsPerIP),
			line:  line("too many connections open from your address (per-IP cap); close some and try again"),
		},
		outcome.LimiterFull: {
			limit: fmt.Sprintf("%d addresses tracked, all with connections open", limiterEntries),
			line:  line("the server is busy with too many clients; try again later"),
		},
		outcome.DenyList: {
			limit: prefixes(l.DenyCIDR),
			line:  line("your address is not allowed"),
		},
		outcome.NotInAllowList: {
			limit: prefixes(l.AllowCIDR),
			line:  line("your address is not allowed"),
		},
		outcome.ProxyUntrusted: {
			limit: prefixes(l.TrustedProxies),
			line:  line("this port takes connections only from trusted proxies"),
		},
	}
}

// prefixes lists CIDR prefixes for the log, comma-separated.
func prefixes[T fmt.Stringer](list []T) string {
	s := make([]string, len(list))
	for i, p := range list {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
