package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/pki"
)

// certsCommand is `seclisten certs init|issue`: the development PKI.
func certsCommand(stdout io.Writer, usageErr cli.OnUsageErrorFunc) *cli.Command {
	keyType := func() *cli.StringFlag {
		return &cli.StringFlag{Name: "key-type", Value: pki.ECDSAP256.String(),
			Usage: "key type: ecdsa-p256, rsa2048 or ed25519"}
	}
	dir := func() *cli.StringFlag {
		return &cli.StringFlag{Name: "dir", Value: "certs", Usage: "`DIR`ectory to write into"}
	}
	force := func() *cli.BoolFlag {
		return &cli.BoolFlag{Name: "force", Usage: "replace existing files"}
	}
	days := func() *cli.IntFlag {
		return &cli.IntFlag{Name: "days", Value: pki.DefaultLeafDays, Usage: "validity of the certificates, in days"}
	}
	return &cli.Command{
		Name:  "certs",
		Usage: "make a development PKI: a CA, server and client certificates, and broken ones to test mTLS clients",
		Subcommands: []*cli.Command{
			{
				Name:         "init",
				Usage:        "write a test PKI: CA, server cert, good and deliberately broken client certs, a CRL",
				OnUsageError: usageErr,
				Flags: withEnvVars([]cli.Flag{
					dir(),
					&cli.StringFlag{Name: "host", Value: strings.Join(pki.DefaultHosts(), ","),
						Usage: "comma-separated `HOSTS` (names and IPs) of the server certificate"},
					keyType(), days(), force(),
				}),
				Action: func(c *cli.Context) error {
					if c.Args().Present() {
						return usageError{fmt.Errorf("certs init takes no arguments, got %q", c.Args().First())}
					}
					kt, err := pki.ParseKeyType(c.String("key-type"))
					if err != nil {
						return usageError{fmt.Errorf("invalid --key-type: %w", err)}
					}
					if c.Int("days") < 1 {
						return usageError{fmt.Errorf("--days must be at least 1, got %d", c.Int("days"))}
					}
					res, err := pki.Init(c.String("dir"), pki.InitOptions{
						Force: c.Bool("force"), KeyType: kt, Hosts: splitList(c.String("host")), Days: c.Int("days"),
					})
					if err != nil {
						return err
					}
					fmt.Fprintf(stdout, "wrote a test PKI (%s keys) in %s:\n", kt, res.Dir)
					for _, f := range res.Files {
						fmt.Fprintf(stdout, "  %s\n", f)
					}
					fmt.Fprintf(stdout, "see %s for what each file is for and how to try it\n", filepath.Join(res.Dir, "FILES.md"))
					return nil
				},
			},
			{
				Name:         "issue",
				Usage:        "sign a new client (--client NAME) or server (--server HOST[,HOST]) certificate with an existing CA",
				OnUsageError: usageErr,
				Flags: withEnvVars([]cli.Flag{
					&cli.StringFlag{Name: "client", Usage: "issue a client certificate with this common `NAME`"},
					&cli.StringFlag{Name: "server", Usage: "issue a server certificate for these comma-separated `HOSTS`"},
					&cli.StringFlag{Name: "ca", Value: "certs/ca.pem", Usage: "CA certificate `FILE`"},
					&cli.StringFlag{Name: "ca-key", Value: "certs/ca-key.pem", Usage: "CA private key `FILE`"},
					&cli.StringSliceFlag{Name: "dns", Usage: "DNS `NAME` SAN to add to a client certificate (repeatable)"},
					&cli.StringSliceFlag{Name: "uri", Usage: "URI SAN, e.g. a SPIFFE ID, to add to a client certificate (repeatable)"},
					&cli.StringSliceFlag{Name: "ou", Usage: "organizational `UNIT` of a client certificate (repeatable)"},
					&cli.StringFlag{Name: "name", Usage: "base file `NAME` (default: the CN or first host)"},
					dir(), keyType(), days(), force(),
				}),
				Action: func(c *cli.Context) error { return certsIssue(c, stdout) },
			},
		},
	}
}

func certsIssue(c *cli.Context, stdout io.Writer) error {
	if c.Args().Present() {
		return usageError{fmt.Errorf("certs issue takes no arguments, got %q", c.Args().First())}
	}
	client, server := c.String("client"), c.String("server")
	if (client == "") == (server == "") {
		return usageError{fmt.Errorf("certs issue needs exactly one of --client NAME or --server HOST[,HOST]")}
	}
	if server != "" && (len(c.StringSlice("dns")) > 0 || len(c.StringSlice("uri")) > 0 || len(c.StringSlice("ou")) > 0) {
		return usageError{fmt.Errorf("--dns, --uri and --ou are for --client; list a server's hosts in --server")}
	}
	kt, err := pki.ParseKeyType(c.String("key-type"))
	if err != nil {
		return usageError{fmt.Errorf("invalid --key-type: %w", err)}
	}
	if c.Int("days") < 1 {
		return usageError{fmt.Errorf("--days must be at least 1, got %d", c.Int("days"))}
	}
	ca, err := pki.LoadCA(c.String("ca"), c.String("ca-key"))
	if err != nil {
		return err
	}
	out := pki.Output{Dir: c.String("dir"), Name: c.String("name"), Force: c.Bool("force")}
	validity := pki.Validity{Days: c.Int("days")}
	var res *pki.IssueResult
	if client != "" {
		res, err = pki.IssueClientFiles(ca, out, pki.ClientOptions{
			CommonName: client, OrganizationalUnits: c.StringSlice("ou"),
			DNSNames: c.StringSlice("dns"), URIs: c.StringSlice("uri"), KeyType: kt, Validity: validity,
		})
	} else {
		res, err = pki.IssueServerFiles(ca, out, pki.ServerOptions{Hosts: splitList(server), KeyType: kt, Validity: validity})
	}
	if err != nil {
		return err
	}
	cert := res.Cert.Certificate
	fmt.Fprintf(stdout, "issued %s (serial 0x%s, valid until %s), signed by %s:\n  %s\n  %s\n",
		cert.Subject, cert.SerialNumber.Text(16), cert.NotAfter.UTC().Format("2006-01-02"), cert.Issuer,
		res.CertFile, res.KeyFile)
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
