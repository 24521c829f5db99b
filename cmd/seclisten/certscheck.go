package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/revocation"
	"github.com/seclisten/seclisten/pkg/tlsconf"
	"github.com/seclisten/seclisten/pkg/verdict"
)

// certsCheckCommand is `seclisten certs check CERT`: the verdict a server
// with --client-ca (and --crl, --allow-*) would give the certificate, with
// the same words and codes, offline. Exit status 0 when it would be served,
// 1 when refused, 2 for bad usage or a file that does not parse.
func certsCheckCommand(stdout io.Writer, usageErr cli.OnUsageErrorFunc) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "say whether a server with these settings would serve a client certificate, and why not",
		ArgsUsage: "CERT",
		Description: "CERT is the client's PEM file: its certificate, then any intermediates it sends.\n" +
			"Exit status: 0 served, 1 refused, 2 bad usage or unreadable files.",
		OnUsageError: usageErr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "the client's private key `FILE`: checks that it matches CERT"},
			&cli.StringSliceFlag{Name: flagClientCA, Usage: "PEM `FILE` of CAs the server trusts for clients (repeatable; required)"},
			&cli.StringSliceFlag{Name: flagCRL, Usage: "CRL `FILE` the server checks (repeatable)"},
			&cli.BoolFlag{Name: flagCRLAllowStale, Usage: "accept CRLs past their next update"},
			&cli.BoolFlag{Name: flagCRLFetch, Usage: "fetch the CRLs at the certificates' http(s) distribution points, as serve does (off here: certs check is offline unless told)"},
			&cli.StringSliceFlag{Name: flagAllowCN, Usage: "allowed common `NAME` (repeatable)"},
			&cli.StringSliceFlag{Name: flagAllowOU, Usage: "allowed organizational `UNIT` (repeatable)"},
			&cli.StringSliceFlag{Name: flagAllowDNS, Usage: "allowed DNS `NAME` SAN (repeatable)"},
			&cli.StringSliceFlag{Name: flagAllowURI, Usage: "allowed `URI` SAN (repeatable)"},
		},
		Action: func(c *cli.Context) error { return certsCheck(c, stdout) },
	}
}

func certsCheck(c *cli.Context, stdout io.Writer) error {
	if c.NArg() != 1 {
		return usageError{errors.New("certs check takes one argument, the client certificate file")}
	}
	if len(c.StringSlice(flagClientCA)) == 0 {
		return usageError{errors.New("certs check needs --client-ca: the CAs the server trusts")}
	}
	file := c.Args().First()
	data, err := os.ReadFile(file)
	if err != nil {
		return usageError{fmt.Errorf("read %s: %w", file, err)}
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return usageError{fmt.Errorf("%s: %w", file, err)}
	}
	var revoker tlsconf.Revoker
	if c.Bool(flagCRLFetch) {
		checker := revocation.New(revocation.Options{})
		defer checker.Close()
		revoker = checker
	}
	src, err := tlsconf.New(tlsconf.Options{
		Revocation:    revoker,
		ClientCAFiles: c.StringSlice(flagClientCA),
		CRLFiles:      c.StringSlice(flagCRL),
		CRLAllowStale: c.Bool(flagCRLAllowStale),
		ClientAuth:    tlsconf.Require,
		Allow: identity.Allowlist{CN: c.StringSlice(flagAllowCN), OU: c.StringSlice(flagAllowOU),
			DNS: c.StringSlice(flagAllowDNS), URI: c.StringSlice(flagAllowURI)},
	})
	if err != nil {
		return usageError{err}
	}
	now := time.Now()
	id := identity.FromCertificate(certs[0])
	fmt.Fprintf(stdout, "certificate: %s (serial %s, valid %s to %s)\n", id.Name, id.Serial,
		id.NotBefore.UTC().Format(time.RFC3339), id.NotAfter.UTC().Format(time.RFC3339))
	if key := c.String("key"); key != "" {
		keyPEM, err := os.ReadFile(key)
		if err != nil {
			return usageError{fmt.Errorf("read %s: %w", key, err)}
		}
		if _, err := tls.X509KeyPair(data, keyPEM); err != nil {
			if block, _ := pem.Decode(keyPEM); block == nil || !isKeyMismatch(err) {
				return usageError{fmt.Errorf("%s: %w", key, err)}
			}
			fmt.Fprintf(stdout, "refused: the key %s does not match the certificate: a client using them fails its handshake\n", key)
			return quietExit(exitError)
		}
	}
	v := verdict.Explain(src.Verify(certs), certs[0], now)
	if v.Code != outcome.OK {
		fmt.Fprintf(stdout, "refused: %s: %s\n", v.Code, v.Text)
		if f := outcomeFlags[v.Code]; f != "" {
			fmt.Fprintf(stdout, "governed by: %s\n", f)
		}
		return quietExit(exitError)
	}
	days := int(id.NotAfter.Sub(now).Hours() / 24)
	fmt.Fprintf(stdout, "served: %s: %s (expires in %d days)\n", v.Code, v.Text, days)
	return nil
}

// flagsFirst moves the positional arguments of `certs check` after its
// flags, so that `certs check CERT --client-ca ca.pem` parses as it reads:
// urfave/cli v2 stops at the first argument that is not a flag. bools are
// the flags that take no value.
func flagsFirst(args []string, bools map[string]bool) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && !bools[name] && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	return append(flags, positional...)
}

// parseCertificates reads the PEM certificates of a file, leaf first.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// isKeyMismatch recognises crypto/tls's error for a key that parses but is
// not the certificate's.
func isKeyMismatch(err error) bool {
	return err.Error() == "tls: private key does not match public key" ||
		err.Error() == "tls: private key type does not match public key type"
}
