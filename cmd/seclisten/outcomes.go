package main

import "github.com/seclisten/seclisten/pkg/outcome"

// outcomeFlags names the flags that govern each outcome, for the log line
// that reports it: the library speaks in outcomes, and only the command
// knows its flags. An outcome no flag governs is absent.
var outcomeFlags = map[outcome.Code]string{
	outcome.Rate:           "--rate,--burst",
	outcome.PerIPCap:       "--max-conns-per-ip",
	outcome.LimiterFull:    "--max-conns-per-ip,--rate",
	outcome.DenyList:       "--deny-cidr",
	outcome.NotInAllowList: "--allow-cidr",
	outcome.ProxyUntrusted: "--trusted-proxy",
	outcome.ProxyBadHeader: "--proxy-protocol",
	outcome.ProxyTimeout:   "--handshake-timeout",
	outcome.Banned:         "--ban-after,--ban-for,--ban-max",

	outcome.HandshakeTimeout: "--handshake-timeout",
	outcome.NotTLS:           "--plain",
	outcome.TLSOnPlain:       "--plain",
	outcome.ProtocolVersion:  "--tls-min",
	outcome.NoALPN:           "--alpn",

	outcome.NoCertificate:     "--client-auth",
	outcome.UnknownAuthority:  "--client-ca",
	outcome.Revoked:           "--crl,--crl-fetch,--ocsp",
	outcome.CRLStale:          "--crl,--crl-allow-stale",
	outcome.RevocationUnknown: "--crl-fetch,--ocsp,--revocation-fail,--crl-max-size",
	outcome.NotAllowed:        "--allow-cn,--allow-ou,--allow-dns,--allow-uri",

	outcome.Slowed:             "--msg-rate,--msg-burst",
	outcome.ClientCertExpiring: "--client-cert-warn",

	outcome.LineTooLong:  "--max-line",
	outcome.IdleTimeout:  "--idle-timeout",
	outcome.MaxLifetime:  "--max-lifetime",
	outcome.WriteTimeout: "--write-timeout",
	outcome.Once:         "--once",
	outcome.Shutdown:     "--shutdown-timeout",
	outcome.ReloadDenied: "--reload-closes-denied,--deny-cidr,--allow-cidr,--crl,--allow-cn,--allow-ou,--allow-dns,--allow-uri",
}

// flagsOf is outcomeFlags as the server takes it.
func flagsOf(c outcome.Code) string { return outcomeFlags[c] }
