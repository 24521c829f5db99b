package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/tlsconf"
)

// printTryIt writes, once the server listens on a loopback address, the
// client command lines to paste into another terminal: a developer's first
// question after starting a server. Text logs only: a JSON log is read by
// programs, and an address that is not loopback is a server for others.
func printTryIt(w io.Writer, cfg config.Config, addr net.Addr) {
	lines := tryIt(cfg, addr)
	if cfg.LogFormat != "text" || len(lines) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("Try it from another terminal:\n")
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// tryIt returns the client command lines for a server listening on addr,
// or none unless addr is a loopback address.
func tryIt(cfg config.Config, addr net.Addr) []string {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil || !ap.Addr().IsLoopback() {
		return nil
	}
	hostPort := net.JoinHostPort(ap.Addr().Unmap().String(), strconv.Itoa(int(ap.Port())))
	if cfg.Plain {
		return []string{fmt.Sprintf("nc %s %d", ap.Addr().Unmap(), ap.Port())}
	}
	base := "openssl s_client -connect " + hostPort
	if ca := devPKIFile(cfg.TLS.CertFile, "ca.pem"); ca != "" {
		base += " -CAfile " + ca
	}
	var lines []string
	if cfg.TLS.ClientAuthMode() != tlsconf.Require {
		lines = append(lines, base+" -quiet")
	}
	if len(cfg.TLS.ClientCAFiles) > 0 {
		cert, key := "CLIENT.pem", "CLIENT-key.pem"
		c, k := devPKIFile(cfg.TLS.ClientCAFiles[0], "client.pem"), devPKIFile(cfg.TLS.ClientCAFiles[0], "client-key.pem")
		if c != "" && k != "" {
			cert, key = c, k
		}
		lines = append(lines, base+" -cert "+cert+" -key "+key+" -quiet")
		// With --explain, a refused client reads why: show it with the
		// development PKI's expired certificate.
		c, k = devPKIFile(cfg.TLS.ClientCAFiles[0], "client-expired.pem"), devPKIFile(cfg.TLS.ClientCAFiles[0], "client-expired-key.pem")
		if cfg.TLS.Explain && c != "" && k != "" {
			lines = append(lines, "echo hi | "+base+" -cert "+c+" -key "+k+" -quiet")
		}
	}
	return lines
}

// devPKIFile returns the file name in the directory of beside, if it exists
// there: the layout `seclisten certs init` writes. It returns "" if beside
// is empty or the file is missing.
func devPKIFile(beside, name string) string {
	if beside == "" {
		return ""
	}
	p := filepath.Join(filepath.Dir(beside), name)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
