package server

import (
	"fmt"
	"strings"

	"github.com/seclisten/seclisten/pkg/admit"
	"github.com/seclisten/seclisten/pkg/config"
)

// alertAccessDenied is a cleartext TLS alert record: fatal (2),
// access_denied (49), RFC 8446 section 6.2. It is what a refused client is
// sent on a TLS port before the close, so `openssl s_client` prints
// "tlsv1 alert access denied" rather than "unexpected eof". The record
// version 0x0303 is what TLS 1.2 and 1.3 records carry (RFC 8446 section
// 5.1).
var alertAccessDenied = []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31}

// refusal describes an admission refusal: the limit or list that refused,
// the flags that govern it, and the line a plain-TCP client is sent.
type refusal struct {
	limit string
	flags string
	line  []byte
}

// refusals describes every admission refusal under the limits l, once at
// start, so a refusal on the hot path only looks its description up.
func refusals(l config.Limits, limiterEntries int) map[admit.Reason]refusal {
	line := func(why string) []byte { return []byte("error: refused: " + why + "\n") }
	return map[admit.Reason]refusal{
		admit.RefusedRate: {
			limit: fmt.Sprintf("%g/s, burst %d", l.Rate, l.Burst),
			flags: "--rate,--burst",
			line:  line("too many connections from your address (rate limit); try again later"),
		},
		admit.RefusedConcurrency: {
			limit: fmt.Sprintf("%d at once", l.MaxConnsPerIP),
			flags: "--max-conns-per-ip",
			line:  line("too many connections open from your address (per-IP cap); close some and try again"),
		},
		admit.RefusedTableFull: {
			limit: fmt.Sprintf("%d addresses tracked, all with connections open", limiterEntries),
			flags: "--max-conns-per-ip,--rate",
			line:  line("the server is busy with too many clients; try again later"),
		},
		admit.Denied: {
			limit: prefixes(l.DenyCIDR),
			flags: "--deny-cidr",
			line:  line("your address is not allowed"),
		},
		admit.NotAllowed: {
			limit: prefixes(l.AllowCIDR),
			flags: "--allow-cidr",
			line:  line("your address is not allowed"),
		},
		untrustedProxy: {
			limit: prefixes(l.TrustedProxies),
			flags: "--trusted-proxy",
			line:  line("this port takes connections only from trusted proxies"),
		},
	}
}

// untrustedProxy is the refusal of a peer that is not a trusted proxy in
// PROXY protocol mode.
const untrustedProxy admit.Reason = "untrusted proxy"

// prefixes lists CIDR prefixes for the log, comma-separated.
func prefixes[T fmt.Stringer](list []T) string {
	s := make([]string, len(list))
	for i, p := range list {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
