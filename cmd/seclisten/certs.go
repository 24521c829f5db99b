package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/pki"
)

// The development PKI's directory and CA files, as `certs init` writes them
// (pki.Init).
const (
	defaultCertsDir = "certs"
	caCertFile      = "ca.pem"
	caKeyFile       = "ca-key.pem"
)

// certsCommand is `seclisten certs init|issue|check`: the development PKI,
// and the verdict a server would give a client certificate.
//
// Its flags read no environment variables. The SECLISTEN_ variables are
// serve's: SECLISTEN_CERT is the server's certificate, and a SECLISTEN_DIR
// or SECLISTEN_FORCE left in a shell would silently redirect or overwrite a
// PKI. A one-shot developer command does what was typed.
func certsCommand(stdout io.Writer, usageErr cli.OnUsageErrorFunc) *cli.Command {
	keyType := func() *cli.StringFlag {
		return &cli.StringFlag{Name: "key-type", Value: pki.ECDSAP256.String(),
			Usage: "key `TYPE`: ecdsa-p256, rsa2048 or ed25519"}
	}
	dir := func(usage string) *cli.StringFlag {
		return &cli.StringFlag{Name: "dir", Value: defaultCertsDir, Usage: usage}
	}
	force := func() *cli.BoolFlag {
		return &cli.BoolFlag{Name: "force", Usage: "replace existing files"}
	}
	days := func() *cli.IntFlag {
		return &cli.IntFlag{Name: "days", Value: pki.DefaultLeafDays, Usage: "validity of the certificates, in `DAYS`"}
	}
	return &cli.Command{
		Name:  "certs",
		Usage: "make a development PKI: a CA, server and client certificates, and broken ones to test mTLS clients",
		Description: "certs init writes a CA and certificates into --dir; certs issue --dir DIR signs with the CA there.\n" +
			"These commands read no environment variables (the SECLISTEN_ ones configure serve).",
		Subcommands: []*cli.Command{
			{
				Name:         "init",
				Usage:        "write a test PKI: CA, server cert, good and deliberately broken client certs, a CRL",
				OnUsageError: usageErr,
				Flags: []cli.Flag{
					dir("`DIR`ectory to write into"),
					&cli.StringFlag{Name: "host", Value: strings.Join(pki.DefaultHosts(), ","),
						Usage: "comma-separated `HOSTS` (names and IPs) of the server certificate"},
					keyType(), days(), force(),
				},
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
						return forceHint(err)
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
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "client", Usage: "issue a client certificate with this common `NAME`"},
					&cli.StringFlag{Name: "server", Usage: "issue a server certificate for these comma-separated `HOSTS`"},
					dir("`DIR`ectory to write into, and to find the CA in (" + caCertFile + " and " + caKeyFile + ", as certs init --dir writes them)"),
					&cli.StringFlag{Name: "ca", Usage: "CA certificate `FILE` (default: " + caCertFile + " in --dir if there, else in " + defaultCertsDir + "/)"},
					&cli.StringFlag{Name: "ca-key", Usage: "CA private key `FILE` (give it with --ca; default: " + caKeyFile + " beside the CA found)"},
					&cli.StringSliceFlag{Name: "dns", Usage: "DNS `NAME` SAN to add to a client certificate (repeatable)"},
					&cli.StringSliceFlag{Name: "uri", Usage: "`URI` SAN, e.g. a SPIFFE ID, to add to a client certificate (repeatable)"},
					&cli.StringSliceFlag{Name: "ou", Usage: "organizational `UNIT` of a client certificate (repeatable)"},
					&cli.StringFlag{Name: "name", Usage: "base file `NAME` (default: the CN or first host)"},
					keyType(), days(), force(),
				},
				Action: func(c *cli.Context) error { return certsIssue(c, stdout) },
			},
			certsCheckCommand(stdout, usageErr),
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
	caCert, caKey, err := issuingCA(c.String("ca"), c.String("ca-key"), c.String("dir"))
	if err != nil {
		return err
	}
	ca, err := pki.LoadCA(caCert, caKey)
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
		return forceHint(err)
	}
	cert := res.Cert.Certificate
	fmt.Fprintf(stdout, "issued %s (serial 0x%s, valid until %s), signed by %s (%s):\n  %s\n  %s\n",
		cert.Subject, cert.SerialNumber.Text(16), cert.NotAfter.UTC().Format("2006-01-02"), cert.Issuer,
		caCert, res.CertFile, res.KeyFile)
	return nil
}

// forceHint points an error about files that already exist at --force.
func forceHint(err error) error {
	if errors.Is(err, fs.ErrExist) {
		return hintError{err, "rerun with --force to replace existing files"}
	}
	return err
}

// issuingCA names the CA files certs issue signs with: --ca and --ca-key if
// given (both, or neither); otherwise ca.pem and ca-key.pem in --dir, where
// `certs init --dir DIR` put them; otherwise those in certs/, the default
// directory of certs init.
func issuingCA(caFlag, keyFlag, dir string) (cert, key string, err error) {
	if (caFlag == "") != (keyFlag == "") {
		return "", "", usageError{errors.New("--ca and --ca-key go together: give both or neither")}
	}
	if caFlag != "" {
		return caFlag, keyFlag, nil
	}
	dirs := []string{dir}
	initCmd := "seclisten certs init"
	if filepath.Clean(dir) != defaultCertsDir {
		dirs = append(dirs, defaultCertsDir)
		initCmd += " --dir " + dir
	}
	var tried []string
	for _, d := range dirs {
		cert = filepath.Join(d, caCertFile)
		if _, err := os.Stat(cert); !errors.Is(err, fs.ErrNotExist) {
			return cert, filepath.Join(d, caKeyFile), nil // LoadCA reports any other error
		}
		tried = append(tried, cert)
	}
	missing := tried[0] + " does not exist"
	if len(tried) == 2 {
		missing = "neither " + tried[0] + " nor " + tried[1] + " exists"
	}
	return "", "", fmt.Errorf("no CA to sign with: %s (make one with %s, or give --ca and --ca-key)", missing, initCmd)
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
