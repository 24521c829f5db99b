package main

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/acme"
	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/setting"
	"github.com/seclisten/seclisten/pkg/tlsconf"
)

// Flag names. Every flag also reads the environment variable
// SECLISTEN_<NAME>, with dashes as underscores (envVar).
const (
	flagAddr            = "addr"
	flagPlain           = "plain"
	flagReply           = "reply"
	flagOnce            = "once"
	flagJSON            = "json"
	flagMaxLine         = "max-line"
	flagIdleTimeout     = "idle-timeout"
	flagParkAfter       = "park-after"
	flagWriteTimeout    = "write-timeout"
	flagMaxConns        = "max-conns"
	flagShutdownTimeout = "shutdown-timeout"
	flagLogFormat       = "log-format"
	flagLogLevel        = "log-level"
	flagReport          = "report"

	flagCert             = "cert"
	flagKey              = "key"
	flagTLSMin           = "tls-min"
	flagALPN             = "alpn"
	flagKeyLog           = "keylog"
	flagCertWarn         = "cert-warn"
	flagHandshakeTimeout = "handshake-timeout"
	flagClientCA         = "client-ca"
	flagClientAuth       = "client-auth"
	flagAllowCN          = "allow-cn"
	flagAllowOU          = "allow-ou"
	flagAllowDNS         = "allow-dns"
	flagAllowURI         = "allow-uri"
	flagCRL              = "crl"
	flagCRLAllowStale    = "crl-allow-stale"
	flagClientCertWarn   = "client-cert-warn"
	flagExplain          = "explain"
	flagClientCANames    = "client-ca-names"

	// Revocation fetched from the certificates' distribution points, and
	// asked of their OCSP responders.
	flagCRLFetch       = "crl-fetch"
	flagCRLMaxSize     = "crl-max-size"
	flagOCSP           = "ocsp"
	flagRevocationFail = "revocation-fail"

	flagACMEDomain         = "acme-domain"
	flagACMEEmail          = "acme-email"
	flagACMEAgree          = "acme-agree"
	flagACMECA             = "acme-ca"
	flagACMEStaging        = "acme-staging"
	flagACMECARoot         = "acme-ca-root"
	flagACMEEABKID         = "acme-eab-kid"
	flagACMEEABHMAC        = "acme-eab-hmac"
	flagACMEProfile        = "acme-profile"
	flagACMEStorage        = "acme-storage"
	flagACMEHTTPAddr       = "acme-http-addr"
	flagACMEAltHTTPPort    = "acme-alt-http-port"
	flagACMEAltTLSALPNPort = "acme-alt-tls-alpn-port"
	flagACMEOnDemand       = "acme-on-demand"
	flagACMENoTLSALPN      = "acme-disable-tls-alpn"
	flagACMEOnDemandAllow  = "acme-on-demand-allow"
	flagACMEAsk            = "acme-ask"
	flagACMERenewCheck     = "acme-renew-check-interval"

	flagRate           = "rate"
	flagBurst          = "burst"
	flagMaxConnsPerIP  = "max-conns-per-ip"
	flagIPv6Prefix     = "ipv6-prefix"
	flagLimitLoopback  = "limit-loopback"
	flagExitAfter      = "exit-after"
	flagAllowCIDR      = "allow-cidr"
	flagDenyCIDR       = "deny-cidr"
	flagMsgRate        = "msg-rate"
	flagMsgBurst       = "msg-burst"
	flagMaxLifetime    = "max-lifetime"
	flagProxyProtocol  = "proxy-protocol"
	flagTrustedProxy   = "trusted-proxy"
	flagRejectLogEvery = "reject-log-interval"
	flagMetricsAddr    = "metrics-addr"

	flagBanAfter           = "ban-after"
	flagBanFor             = "ban-for"
	flagBanMax             = "ban-max"
	flagReloadClosesDenied = "reload-closes-denied"

	// The fleet's shared state in Redis.
	flagRedis             = "redis"
	flagRedisPrefix       = "redis-prefix"
	flagRedisFail         = "redis-fail"
	flagTicketKeyRotation = "ticket-key-rotation"
	flagRedisLockTTL      = "redis-lock-ttl"
)

// envVar is the environment variable that sets a flag.
func envVar(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Categories of the serve flags, in the order `serve --help` shows them:
// what a user needs first comes first, ACME and the fleet's Redis last.
// Every serve flag has one (inHelpOrder panics otherwise); to add a flag,
// give it one of these and put it where it belongs among the flags of that
// category.
const (
	catListener   = "listener and exchange"
	catTLS        = "TLS"
	catClientAuth = "client authentication (mTLS)"
	catLimits     = "limits"
	catTimeouts   = "timeouts"
	catOutput     = "output and metrics"
	catACME       = "ACME (automatic certificates)"
	catFleet      = "fleet (shared state in Redis)"
)

// serveCategories lists the categories in help order.
func serveCategories() []string {
	return []string{catListener, catTLS, catClientAuth, catLimits, catTimeouts, catOutput, catACME, catFleet}
}

// serveFlags are the flags of `seclisten serve`, in help order. Defaults
// come from config.Default(), so the help text and the code cannot
// disagree; the one exception is --acme-storage, whose default,
// acme.DefaultStorageDir(), depends on $XDG_DATA_HOME and the home
// directory, which config does not read. Values that need parsing are
// string flags parsed by configFromFlags, so that a bad value gets the same
// one-sentence error from a flag or from the environment. Every Usage names
// its value with a backquoted placeholder (DURATION, SIZE, N, ...), shown
// after the flag.
func serveFlags() []cli.Flag {
	d := config.Default()
	return inHelpOrder([]cli.Flag{
		&cli.StringFlag{Name: flagAddr, Category: catListener,
			Usage: "`HOST:PORT` to listen on (default " + config.DefaultTLSAddr + ", or " + config.DefaultPlainAddr + " with --plain)"},
		&cli.BoolFlag{Name: flagPlain, Category: catListener,
			Usage: "serve plain TCP instead of TLS"},
		&cli.StringFlag{Name: flagReply, Category: catListener, Value: d.Reply,
			Usage: "`TEXT` sent, with a newline, after every message"},
		&cli.BoolFlag{Name: flagReport, Category: catListener,
			Usage: "answer each line with what the server saw of the connection (identity, verdict, TLS version, cipher, ...)"},
		&cli.BoolFlag{Name: flagOnce, Category: catListener,
			Usage: "close each connection after its first message and reply"},
		&cli.StringFlag{Name: flagExitAfter, Category: catListener,
			Usage: "after `N` connections, stop accepting, finish them and exit 0 (with --once: the single-shot server)"},
		&cli.StringFlag{Name: flagMaxLine, Category: catListener, Value: sizeString(d.MaxLine),
			Usage: "longest line accepted, a `SIZE` like 65536 or 64KiB; longer gets an error reply and is closed"},
		&cli.StringFlag{Name: flagMaxConns, Category: catListener, Value: strconv.Itoa(d.MaxConns),
			Usage: "`N` connections served at once; more wait in the kernel backlog"},
		&cli.StringFlag{Name: flagConfig, Category: catListener,
			Usage: "TOML `FILE` whose keys are these flags' names (max-conns-per-ip = 32); the environment and the command line win over it"},

		&cli.StringFlag{Name: flagCert, Category: catTLS,
			Usage: "server certificate `FILE` (PEM, chain allowed); without it, an ephemeral self-signed one"},
		&cli.StringFlag{Name: flagKey, Category: catTLS,
			Usage: "private key `FILE` (PEM) of --cert"},
		&cli.StringFlag{Name: flagTLSMin, Category: catTLS, Value: tlsconf.VersionName(d.TLS.MinVersion),
			Usage: "lowest TLS `VERSION`: 1.2 (Mozilla intermediate) or 1.3 (modern)"},
		&cli.StringSliceFlag{Name: flagALPN, Category: catTLS,
			Usage: "application `PROTOCOL` to offer by ALPN, in order of preference (repeatable)"},
		&cli.StringFlag{Name: flagCertWarn, Category: catTLS, Value: durationString(d.TLS.CertWarn),
			Usage: "warn when the server certificate in service expires within this `DURATION`, then once a day (0: off)"},
		&cli.StringFlag{Name: flagKeyLog, Category: catTLS,
			Usage: "write every session's TLS secrets to `FILE` (NSS key log format, for Wireshark); a new file or one of mode 0600. Never in production: whoever reads it decrypts the traffic"},

		&cli.StringSliceFlag{Name: flagClientCA, Category: catClientAuth,
			Usage: "PEM `FILE` of CAs that sign client certificates: turns on mTLS (repeatable)"},
		&cli.StringFlag{Name: flagClientAuth, Category: catClientAuth,
			Usage: "`MODE`: request (ask, don't verify), verify-if-given, require (default with --client-ca) or audit (verify and log, but serve)"},
		&cli.StringSliceFlag{Name: flagAllowCN, Category: catClientAuth,
			Usage: "serve only clients whose certificate has this common `NAME` (repeatable)"},
		&cli.StringSliceFlag{Name: flagAllowOU, Category: catClientAuth,
			Usage: "serve only clients with this organizational `UNIT` (repeatable)"},
		&cli.StringSliceFlag{Name: flagAllowDNS, Category: catClientAuth,
			Usage: "serve only clients with this DNS `NAME` SAN (repeatable)"},
		&cli.StringSliceFlag{Name: flagAllowURI, Category: catClientAuth,
			Usage: "serve only clients with this `URI` SAN, e.g. a SPIFFE ID (repeatable)"},
		&cli.StringSliceFlag{Name: flagCRL, Category: catClientAuth,
			Usage: "CRL `FILE` (PEM or DER) signed by a client CA; revoked clients are refused (repeatable)"},
		&cli.BoolFlag{Name: flagCRLAllowStale, Category: catClientAuth,
			Usage: "accept CRLs past their next update (by default they fail closed)"},
		&cli.BoolFlag{Name: flagCRLFetch, Category: catClientAuth,
			Usage: "fetch the CRL at each client certificate's http(s) distribution point, verify it against the issuer, cache it until its next update (default: on with --client-ca and no --crl; --crl-fetch=false turns it off)"},
		&cli.StringFlag{Name: flagCRLMaxSize, Category: catClientAuth, Value: sizeString(int(d.TLS.CRLMaxSize)),
			Usage: "largest CRL fetched, a `SIZE` like 16MiB; a larger one is a failed fetch"},
		&cli.StringFlag{Name: flagClientCertWarn, Category: catClientAuth, Value: durationString(d.TLS.ClientCertWarn),
			Usage: "warn, once a day per certificate, of a served client whose certificate expires within this `DURATION` (0: off)"},
		&cli.BoolFlag{Name: flagExplain, Category: catClientAuth,
			Usage: "tell a refused client why, in one line over TLS, then close (tells strangers what is checked: for development)"},
		&cli.StringFlag{Name: flagClientCANames, Category: catClientAuth, Value: "show",
			Usage: "`show` the client CAs' names when asking for a certificate, or hide them (a refused client is then not told them)"},

		&cli.BoolFlag{Name: flagOCSP, Category: catClientAuth,
			Usage: "ask the OCSP responder a client certificate names (its AIA, http) whether it is revoked; answers are cached until their next update"},
		&cli.StringFlag{Name: flagRevocationFail, Category: catClientAuth, Value: "closed",
			Usage: "when a client's revocation status cannot be had (no fresh CRL, OCSP responder down or \"unknown\"): `closed` refuses the client (revocation-unknown), open serves it and logs a warning"},

		&cli.StringFlag{Name: flagRate, Category: catLimits, Value: strconv.FormatFloat(d.Limits.Rate, 'g', -1, 64),
			Usage: "`N` new connections per second per client IP (0: no limit)"},
		&cli.StringFlag{Name: flagBurst, Category: catLimits, Value: strconv.Itoa(d.Limits.Burst),
			Usage: "`N` new connections a client IP may open at once before --rate applies"},
		&cli.StringFlag{Name: flagMaxConnsPerIP, Category: catLimits, Value: strconv.Itoa(d.Limits.MaxConnsPerIP),
			Usage: "`N` concurrent connections per client IP (0: no cap)"},
		&cli.StringFlag{Name: flagMsgRate, Category: catLimits, Value: strconv.FormatFloat(d.Limits.MsgRate, 'g', -1, 64),
			Usage: "`N` messages per second per connection; a faster client is slowed (0: no limit)"},
		&cli.StringFlag{Name: flagMsgBurst, Category: catLimits, Value: strconv.Itoa(d.Limits.MsgBurst),
			Usage: "`N` messages a connection may send at once before --msg-rate applies"},
		&cli.StringSliceFlag{Name: flagAllowCIDR, Category: catLimits,
			Usage: "serve only clients in this `CIDR` (repeatable)"},
		&cli.StringSliceFlag{Name: flagDenyCIDR, Category: catLimits,
			Usage: "never serve clients in this `CIDR` (repeatable; wins over --allow-cidr)"},
		&cli.BoolFlag{Name: flagLimitLoopback, Category: catLimits,
			Usage: "apply the per-IP limits to loopback clients too (by default 127.0.0.0/8 and ::1 are exempt)"},
		&cli.StringFlag{Name: flagIPv6Prefix, Category: catLimits, Value: strconv.Itoa(d.Limits.IPv6Prefix),
			Usage: "IPv6 clients are limited per prefix of this `LENGTH` (a host gets a /64)"},
		&cli.BoolFlag{Name: flagProxyProtocol, Category: catLimits,
			Usage: "read a PROXY protocol v1/v2 header for the real client address; only --trusted-proxy peers may connect"},
		&cli.StringSliceFlag{Name: flagTrustedProxy, Category: catLimits,
			Usage: "`CIDR` of load balancers allowed to send PROXY headers (repeatable)"},
		&cli.StringFlag{Name: flagBanAfter, Category: catLimits,
			Usage: "ban a client IP after `N/WINDOW` failures that mean abuse, like 10/1m (plaintext on the TLS port, handshake timeouts, refused certificates, rate refusals; default off)"},
		&cli.StringFlag{Name: flagBanFor, Category: catLimits, Value: durationString(d.Bans.For),
			Usage: "first ban of a client IP lasts this `DURATION`; each new ban of the same IP doubles it"},
		&cli.StringFlag{Name: flagBanMax, Category: catLimits, Value: durationString(d.Bans.Max),
			Usage: "longest ban, a `DURATION` (at least --ban-for)"},
		&cli.BoolFlag{Name: flagReloadClosesDenied, Category: catLimits,
			Usage: "at a reload (SIGHUP), close the connections in flight whose client the new policy refuses (a denied CIDR, a certificate now revoked or not allowed)"},
		&cli.StringFlag{Name: flagRejectLogEvery, Category: catLimits, Hidden: true, Value: durationString(d.RejectLogInterval),
			Usage: "how often (a `DURATION`) refused connections are summarised in the log"},

		&cli.StringFlag{Name: flagHandshakeTimeout, Category: catTimeouts, Value: durationString(d.TLS.HandshakeTimeout),
			Usage: "`DURATION` from accept to a completed TLS handshake"},
		&cli.StringFlag{Name: flagIdleTimeout, Category: catTimeouts, Value: durationString(d.IdleTimeout),
			Usage: "close a connection that sends nothing for this `DURATION`"},
		&cli.StringFlag{Name: flagParkAfter, Category: catTimeouts, Value: durationString(d.ParkAfter),
			Usage: "a connection whose client sent nothing for this `DURATION` waits without a goroutine of its own, until its client sends (Linux; 0: never)"},
		&cli.StringFlag{Name: flagWriteTimeout, Category: catTimeouts, Value: durationString(d.WriteTimeout),
			Usage: "give up on a reply the client does not read within this `DURATION`"},
		&cli.StringFlag{Name: flagMaxLifetime, Category: catTimeouts, Value: durationString(d.Limits.MaxLifetime),
			Usage: "close any connection this `DURATION` after accept (0: unbounded)"},
		&cli.StringFlag{Name: flagShutdownTimeout, Category: catTimeouts, Value: durationString(d.ShutdownTimeout),
			Usage: "on SIGINT/SIGTERM, `DURATION` to finish answering before closing the rest"},

		&cli.BoolFlag{Name: flagJSON, Category: catOutput,
			Usage: "print one JSON object per event on stdout (connect, message, reply, close)"},
		&cli.StringFlag{Name: flagLogFormat, Category: catOutput, Value: d.LogFormat,
			Usage: "log `FORMAT` on stderr: text or json"},
		&cli.StringFlag{Name: flagLogLevel, Category: catOutput, Value: strings.ToLower(d.LogLevel.String()),
			Usage: "least important log `LEVEL` shown: debug, info, warn or error (info logs the handshake line for up to 100 handshakes a second, then one in 100 and a count of the rest; debug every one)"},
		&cli.StringFlag{Name: flagMetricsAddr, Category: catOutput,
			Usage: "`HOST:PORT` serving Prometheus /metrics, /healthz and /readyz (off by default; e.g. 127.0.0.1:9464)"},

		&cli.StringSliceFlag{Name: flagACMEDomain, Category: catACME,
			Usage: "obtain and renew a certificate for `NAME` automatically (repeatable)"},
		&cli.StringFlag{Name: flagACMEEmail, Category: catACME, Usage: "ACME account contact `ADDRESS` (the CA warns there of problems)"},
		&cli.BoolFlag{Name: flagACMEAgree, Category: catACME, Usage: "accept the ACME CA's terms of service (required)"},
		&cli.BoolFlag{Name: flagACMEStaging, Category: catACME, Usage: "use Let's Encrypt's staging CA (try this first)"},
		&cli.StringFlag{Name: flagACMECA, Category: catACME,
			Usage: "ACME directory `URL` (default: Let's Encrypt production)"},
		&cli.StringFlag{Name: flagACMECARoot, Category: catACME, Usage: "PEM `FILE` of roots to trust for a private ACME CA's API"},
		&cli.StringFlag{Name: flagACMEEABKID, Category: catACME, Usage: "external account binding key `ID` (CAs that need one)"},
		&cli.StringFlag{Name: flagACMEEABHMAC, Category: catACME, Usage: "external account binding HMAC `KEY` (base64url)"},
		&cli.StringFlag{Name: flagACMEProfile, Category: catACME, Usage: "the CA's certificate `PROFILE` (e.g. shortlived); default: the CA's"},
		&cli.StringFlag{Name: flagACMEStorage, Category: catACME, Value: acme.DefaultStorageDir(),
			Usage: "`DIR` for the ACME account, keys and certificates; replicas may share it"},
		&cli.StringFlag{Name: flagACMEHTTPAddr, Category: catACME,
			Usage: "`HOST:PORT` answering HTTP-01 challenges (default :80 with ACME), or off"},
		&cli.StringFlag{Name: flagACMEAltHTTPPort, Category: catACME, Value: strconv.Itoa(d.ACME.AltHTTPPort),
			Usage: "`PORT` the CA connects to for HTTP-01, if not 80 (port forwarding)"},
		&cli.StringFlag{Name: flagACMEAltTLSALPNPort, Category: catACME, Value: strconv.Itoa(d.ACME.AltTLSALPNPort),
			Usage: "`PORT` the CA connects to for TLS-ALPN-01, if not 443 (port forwarding)"},
		&cli.BoolFlag{Name: flagACMENoTLSALPN, Category: catACME,
			Usage: "do not answer TLS-ALPN-01 on the listener (when the CA cannot reach it on 443)"},
		&cli.BoolFlag{Name: flagACMEOnDemand, Category: catACME,
			Usage: "obtain certificates at the first handshake for names not known in advance (needs a gate)"},
		&cli.StringSliceFlag{Name: flagACMEOnDemandAllow, Category: catACME,
			Usage: "on-demand gate: allowed `NAME` or *.suffix pattern (repeatable)"},
		&cli.StringFlag{Name: flagACMEAsk, Category: catACME,
			Usage: "on-demand gate: `URL` asked GET ?domain=NAME; only 200 allows issuance"},
		&cli.StringFlag{Name: flagACMERenewCheck, Category: catACME, Hidden: true, Value: durationString(d.ACME.RenewCheckInterval),
			Usage: "the longest wait (a `DURATION`) between renewal checks; a tenth of the shortest certificate lifetime if shorter (tests only)"},

		&cli.StringFlag{Name: flagRedis, Category: catFleet,
			Usage: "share ACME certificates and session-ticket keys with the other replicas through Redis at `URL` (redis:// or rediss://, [:PASSWORD@]HOST:PORT[/DB])"},
		&cli.StringFlag{Name: flagRedisPrefix, Category: catFleet, Value: d.Fleet.Prefix,
			Usage: "`PREFIX` of every key seclisten writes in Redis"},
		&cli.StringFlag{Name: flagRedisFail, Category: catFleet, Value: "open",
			Usage: "`MODE` while Redis is unreachable: open (serve with the local state) or closed (/readyz says not ready)"},
		&cli.StringFlag{Name: flagTicketKeyRotation, Category: catFleet, Value: durationString(d.Fleet.TicketKeyRotation),
			Usage: "replace the fleet's session-ticket key every `DURATION` (the last 4 keys still decrypt)"},
		&cli.StringFlag{Name: flagRedisLockTTL, Category: catFleet, Hidden: true, Value: durationString(d.Fleet.LockTTL),
			Usage: "how long a lock outlives a replica that stopped renewing it (a `DURATION`; tests only)"},
	})
}

// inHelpOrder sorts flags by category in the order of serveCategories,
// keeping their order within a category, so a flag added anywhere in
// serveFlags is shown with its category. A flag without a known category is
// a programming error.
func inHelpOrder(flags []cli.Flag) []cli.Flag {
	rank := map[string]int{}
	for i, c := range serveCategories() {
		rank[c] = i
	}
	category := func(f cli.Flag) int {
		var cat string
		if cf, ok := f.(cli.CategorizableFlag); ok {
			cat = cf.GetCategory()
		}
		r, ok := rank[cat]
		if !ok {
			panic(fmt.Sprintf("flag %s: category %q is not one of serveCategories", f.Names()[0], cat))
		}
		return r
	}
	for _, f := range flags {
		category(f)
	}
	slices.SortStableFunc(flags, func(a, b cli.Flag) int { return category(a) - category(b) })
	return flags
}

// serveHelpTemplate is urfave/cli's CommandHelpTemplate, except that the
// flags are listed under their category in the order of serveFlags, where
// urfave/cli sorts categories, and flags within them, alphabetically.
// (--help, which has no category, is left out, as urfave/cli does.)
const serveHelpTemplate = `NAME:
   {{template "helpNameTemplate" .}}

USAGE:
   {{template "usageTemplate" .}}{{if .Description}}

DESCRIPTION:
   {{template "descriptionTemplate" .}}{{end}}

OPTIONS:{{$cat := ""}}{{range .VisibleFlags}}{{if .GetCategory}}{{if ne .GetCategory $cat}}{{if $cat}}
{{end}}{{$cat = .GetCategory}}
   {{$cat}}
{{end}}
   {{.}}{{end}}{{end}}
`

// withEnvVars gives every flag its SECLISTEN_ environment variable.
func withEnvVars(flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			f.EnvVars = []string{envVar(f.Name)}
		case *cli.BoolFlag:
			f.EnvVars = []string{envVar(f.Name)}
			f.DisableDefaultText = true // "(default: false)" says nothing about a switch
		case *cli.StringSliceFlag:
			f.EnvVars = []string{envVar(f.Name)}
		case *cli.IntFlag:
			f.EnvVars = []string{envVar(f.Name)}
		default:
			panic(fmt.Sprintf("flag %s: no environment variable wiring", f.Names()[0]))
		}
	}
	return flags
}

// configFromFlags builds the Config of `serve` and validates it. Its errors
// are one sentence, naming the flag or environment variable at fault. Even
// with an error, the Config holds what did parse (a bad value stays at its
// default), so that its log settings can be used to report it.
//
// With --config, each flag that neither the command line nor the
// environment sets takes its key's value in the file, and an error about it
// names the file, the line and the key. The error joins every problem
// found, in order (Unwrap() []error); its first line is the first problem.
func configFromFlags(c *cli.Context, args []string) (config.Config, error) {
	cfg, _, err := parseFlags(c, args)
	return cfg, err
}

// parseFlags is configFromFlags, and also says which keys of the
// configuration file were applied (the ones no flag or variable set).
func parseFlags(c *cli.Context, args []string) (config.Config, map[string]bool, error) {
	cfg := config.Default()
	p := parser{c: c, args: args, failed: map[string]bool{}}
	if path := c.String(flagConfig); path != "" {
		file, err := readConfigFile(path, c.Command.Flags)
		if file == nil {
			return cfg, nil, err
		}
		p.errs = append(p.errs, problems(err)...)
		if p.fromFile, err = applyConfigFile(c, file); err != nil {
			return cfg, nil, err
		}
		p.file = file
		p.filesExist(flagCert, flagKey, flagClientCA, flagCRL, flagACMECARoot)
	}
	cfg.Addr = c.String(flagAddr)
	cfg.Plain = c.Bool(flagPlain)
	cfg.Reply = c.String(flagReply)
	cfg.Once = c.Bool(flagOnce)
	cfg.JSON = c.Bool(flagJSON)
	cfg.LogFormat = c.String(flagLogFormat)
	cfg.MaxLine = p.size(flagMaxLine)
	cfg.MaxConns = p.int(flagMaxConns)
	cfg.IdleTimeout = p.duration(flagIdleTimeout)
	cfg.ParkAfter = p.duration(flagParkAfter)
	cfg.WriteTimeout = p.duration(flagWriteTimeout)
	cfg.ShutdownTimeout = p.duration(flagShutdownTimeout)
	cfg.Report = c.Bool(flagReport)
	cfg.TLS.CertFile = c.String(flagCert)
	cfg.TLS.KeyFile = c.String(flagKey)
	cfg.TLS.MinVersion = p.tlsVersion(flagTLSMin)
	cfg.TLS.ALPN = c.StringSlice(flagALPN)
	cfg.TLS.KeyLogFile = c.String(flagKeyLog)
	cfg.TLS.CertWarn = p.duration(flagCertWarn)
	cfg.TLS.HandshakeTimeout = p.duration(flagHandshakeTimeout)
	cfg.TLS.ClientCAFiles = c.StringSlice(flagClientCA)
	cfg.TLS.ClientAuth = p.clientAuth(flagClientAuth)
	cfg.TLS.Allow.CN = c.StringSlice(flagAllowCN)
	cfg.TLS.Allow.OU = c.StringSlice(flagAllowOU)
	cfg.TLS.Allow.DNS = c.StringSlice(flagAllowDNS)
	cfg.TLS.Allow.URI = c.StringSlice(flagAllowURI)
	cfg.TLS.CRLFiles = c.StringSlice(flagCRL)
	cfg.TLS.CRLAllowStale = c.Bool(flagCRLAllowStale)
	if c.IsSet(flagCRLFetch) {
		on := c.Bool(flagCRLFetch)
		cfg.TLS.CRLFetch = &on
	}
	cfg.TLS.CRLMaxSize = p.byteSize(flagCRLMaxSize)
	cfg.TLS.ClientCertWarn = p.duration(flagClientCertWarn)
	cfg.TLS.Explain = c.Bool(flagExplain)
	cfg.TLS.HideClientCANames = p.either(flagClientCANames, "show", "hide")
	cfg.TLS.OCSP = c.Bool(flagOCSP)
	cfg.TLS.RevocationFailOpen = p.either(flagRevocationFail, "closed", "open")
	cfg.ACME.Domains = c.StringSlice(flagACMEDomain)
	cfg.ACME.Email = c.String(flagACMEEmail)
	cfg.ACME.Agree = c.Bool(flagACMEAgree)
	cfg.ACME.CA = c.String(flagACMECA)
	cfg.ACME.Staging = c.Bool(flagACMEStaging)
	cfg.ACME.CARootFile = c.String(flagACMECARoot)
	cfg.ACME.EABKeyID = c.String(flagACMEEABKID)
	cfg.ACME.EABMAC = c.String(flagACMEEABHMAC)
	cfg.ACME.Profile = c.String(flagACMEProfile)
	cfg.ACME.Storage = c.String(flagACMEStorage)
	cfg.ACME.HTTPAddr = c.String(flagACMEHTTPAddr)
	cfg.ACME.AltHTTPPort = p.int(flagACMEAltHTTPPort)
	cfg.ACME.AltTLSALPNPort = p.int(flagACMEAltTLSALPNPort)
	cfg.ACME.OnDemand = c.Bool(flagACMEOnDemand)
	cfg.ACME.DisableTLSALPN = c.Bool(flagACMENoTLSALPN)
	cfg.ACME.OnDemandAllow = c.StringSlice(flagACMEOnDemandAllow)
	cfg.ACME.Ask = c.String(flagACMEAsk)
	cfg.ACME.RenewCheckInterval = p.duration(flagACMERenewCheck)
	cfg.Limits.Rate = p.float(flagRate)
	cfg.Limits.Burst = p.int(flagBurst)
	cfg.Limits.MaxConnsPerIP = p.int(flagMaxConnsPerIP)
	cfg.Limits.IPv6Prefix = p.int(flagIPv6Prefix)
	cfg.Limits.LimitLoopback = c.Bool(flagLimitLoopback)
	cfg.ExitAfter = p.count(flagExitAfter)
	cfg.Limits.AllowCIDR = p.cidrs(flagAllowCIDR)
	cfg.Limits.DenyCIDR = p.cidrs(flagDenyCIDR)
	cfg.Limits.MsgRate = p.float(flagMsgRate)
	cfg.Limits.MsgBurst = p.int(flagMsgBurst)
	cfg.Limits.MaxLifetime = p.duration(flagMaxLifetime)
	cfg.Limits.ProxyProtocol = c.Bool(flagProxyProtocol)
	cfg.Limits.TrustedProxies = p.cidrs(flagTrustedProxy)
	cfg.RejectLogInterval = p.duration(flagRejectLogEvery)
	cfg.Bans.After, cfg.Bans.Window = p.banAfter(flagBanAfter)
	cfg.Bans.For = p.duration(flagBanFor)
	cfg.Bans.Max = p.duration(flagBanMax)
	cfg.MetricsAddr = c.String(flagMetricsAddr)
	cfg.ReloadClosesDenied = c.Bool(flagReloadClosesDenied)
	cfg.Fleet.Redis = c.String(flagRedis)
	cfg.Fleet.Prefix = c.String(flagRedisPrefix)
	cfg.Fleet.FailClosed = p.either(flagRedisFail, "open", "closed")
	cfg.Fleet.TicketKeyRotation = p.duration(flagTicketKeyRotation)
	cfg.Fleet.LockTTL = p.duration(flagRedisLockTTL)
	if lvl, err := config.ParseLevel(c.String(flagLogLevel)); err != nil {
		p.failPhrase(flagLogLevel, err)
	} else {
		cfg.LogLevel = lvl
	}
	if cfg.TLS.KeyLogFile != "" && os.Getenv("INVOCATION_ID") != "" {
		// systemd sets INVOCATION_ID for every unit it runs: a service
		// never writes its session keys, whatever its unit or environment
		// file says.
		p.errs = append(p.errs, fmt.Errorf("%s is refused under systemd: a service must not write its TLS session keys", p.source(flagKeyLog)))
	}
	for _, err := range cfg.Problems() {
		// A value that did not parse stays at its default, or zero:
		// what Validate says of it would only repeat the first error.
		if se, ok := err.(*setting.Error); ok && slices.ContainsFunc(se.Keys(), func(k string) bool { return p.failed[k] }) {
			continue
		}
		p.errs = append(p.errs, p.settingError(err))
	}
	return cfg, p.fromFile, errors.Join(p.errs...)
}

// settingError words an error of pkg/ for the user: asFlags, except that a
// key set by the configuration file is named as the file names it, and the
// sentence starts with the file and the line of the first such key.
func (p *parser) settingError(err error) error {
	se, ok := err.(*setting.Error)
	if !ok || p.file == nil {
		return asFlags(err, func(key string) string { return "--" + key })
	}
	prefix := ""
	msg := se.Render(func(key string) string {
		if !p.fromFile[key] {
			return "--" + key
		}
		if prefix == "" {
			prefix = fmt.Sprintf("%s:%d: ", p.file.path, p.file.values[key].line)
		}
		return key
	})
	return errors.New(prefix + msg)
}

// filesExist checks that the files named by the given flags, when the
// configuration file names them, can be read: the file's line is then in
// the error, not only the path in a later one of the TLS loader.
func (p *parser) filesExist(flags ...string) {
	for _, flag := range flags {
		if !p.fromFile[flag] {
			continue
		}
		for _, path := range p.file.values[flag].strs {
			if f, err := os.Open(path); err != nil {
				p.fail(flag, err)
			} else {
				_ = f.Close()
			}
		}
	}
}

// asFlags words an error of pkg/ for the command line: if err is a
// *setting.Error, each setting it names by key is shown as flag(key), the
// flag that sets it (config's keys are the serve flags' names: `cert` is
// --cert). Any other error is returned as it is.
func asFlags(err error, flag func(key string) string) error {
	se, ok := err.(*setting.Error)
	if !ok {
		return err
	}
	return errors.New(se.Render(flag))
}

// parser parses flag values, keeping every error.
type parser struct {
	c    *cli.Context
	args []string
	errs []error
	// failed holds the flags whose value did not parse.
	failed map[string]bool
	// file is the configuration file, if any, and fromFile the keys whose
	// value came from it.
	file     *configFile
	fromFile map[string]bool
}

func (p *parser) fail(flag string, err error) {
	p.failed[flag] = true
	if p.fromFile[flag] {
		p.errs = append(p.errs, fmt.Errorf("%s: %w", p.file.at(flag), err))
		return
	}
	p.errs = append(p.errs, fmt.Errorf("invalid %s: %w", p.source(flag), err))
}

// failPhrase keeps the error of a parser that words it as a phrase to
// follow the setting's name ("must be 1.2 or 1.3, got ..."): the
// enumerations.
func (p *parser) failPhrase(flag string, err error) {
	p.failed[flag] = true
	p.errs = append(p.errs, fmt.Errorf("%s %w", p.source(flag), err))
}

// source names where a flag's value came from: the command line, its
// environment variable, or the configuration file (file:line: key).
func (p *parser) source(flag string) string {
	if p.fromFile[flag] {
		return p.file.at(flag)
	}
	for _, a := range p.args {
		if a == "--" {
			break
		}
		name := strings.TrimLeft(a, "-")
		name, _, _ = strings.Cut(name, "=")
		if strings.HasPrefix(a, "-") && name == flag {
			return "--" + flag
		}
	}
	if p.c.IsSet(flag) {
		return envVar(flag)
	}
	return "--" + flag
}

// either is a flag of two values: false for off (the default), true for
// on; anything else is an error.
func (p *parser) either(flag, off, on string) bool {
	switch v := strings.TrimSpace(p.c.String(flag)); v {
	case off:
		return false
	case on:
		return true
	default:
		p.fail(flag, fmt.Errorf("%q is not %s or %s", v, off, on))
		return false
	}
}

func (p *parser) duration(flag string) time.Duration {
	d, err := config.ParseDuration(p.c.String(flag))
	if err != nil {
		p.fail(flag, err)
	}
	return d
}

func (p *parser) size(flag string) int {
	n, err := config.ParseSize(p.c.String(flag))
	if err == nil && n > int64(config.MaxLineLimit) {
		err = fmt.Errorf("%q is over the limit of 16MiB", p.c.String(flag))
	}
	if err != nil {
		p.fail(flag, err)
	}
	return int(n)
}

// byteSize parses a SIZE flag with no upper limit.
func (p *parser) byteSize(flag string) int64 {
	n, err := config.ParseSize(p.c.String(flag))
	if err != nil {
		p.fail(flag, err)
	}
	return n
}

func (p *parser) int(flag string) int {
	s := strings.TrimSpace(p.c.String(flag))
	n, err := strconv.Atoi(s)
	if err != nil {
		p.fail(flag, errors.New(strconv.Quote(s)+" is not a whole number"))
	}
	return n
}

// count parses a flag that counts something, such as connections: unset is
// 0 (no count), and a value given must be a whole number of at least 1.
func (p *parser) count(flag string) int {
	s := strings.TrimSpace(p.c.String(flag))
	if !p.c.IsSet(flag) && s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		p.fail(flag, errors.New(strconv.Quote(s)+" is not a whole number of at least 1"))
		return 0
	}
	return n
}

func (p *parser) float(flag string) float64 {
	s := strings.TrimSpace(p.c.String(flag))
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.fail(flag, errors.New(strconv.Quote(s)+" is not a number"))
	}
	return v
}

func (p *parser) banAfter(flag string) (int, time.Duration) {
	n, w, err := config.ParseBanAfter(p.c.String(flag))
	if err != nil {
		p.fail(flag, err)
	}
	return n, w
}

func (p *parser) tlsVersion(flag string) uint16 {
	v, err := tlsconf.ParseVersion(p.c.String(flag))
	if err != nil {
		p.failPhrase(flag, err)
	}
	return v
}

// clientAuth parses a client-authentication mode; empty is nil, no mode
// given (config.TLS.ClientAuthMode then picks the default).
func (p *parser) clientAuth(flag string) *tlsconf.ClientAuth {
	s := p.c.String(flag)
	if s == "" {
		return nil
	}
	mode, err := tlsconf.ParseClientAuth(s)
	if err != nil {
		p.failPhrase(flag, err)
		return nil
	}
	return &mode
}

func (p *parser) cidrs(flag string) []netip.Prefix {
	list, err := config.ParseCIDRs(p.c.StringSlice(flag))
	if err != nil {
		p.fail(flag, err)
	}
	return list
}

// durationString prints a duration the way a user would type it: 2m, not 2m0s.
func durationString(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= 2*day && d%day == 0 {
		return strconv.Itoa(int(d/day)) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if s == "0s" {
		return "0"
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// sizeString prints a byte size with the largest exact binary unit.
func sizeString(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n)
}
