package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/testbed"
)

// defaultTestbedDir is where testbed keeps its PKI.
const defaultTestbedDir = "certs/testbed"

func testbedCommand(stdout, stderr io.Writer, usageErr cli.OnUsageErrorFunc) *cli.Command {
	return &cli.Command{
		Name:  "testbed",
		Usage: "misbehaving TLS servers, one per port, that grade the clients connecting to them",
		Description: "Each case is a server on its own port: a good one, and one for each way a server can be\n" +
			"wrong. Point your client at them (or paste the printed openssl commands), then Ctrl-C, --duration\n" +
			"or --exit-after prints the report card. The exit status is 1 when a case FAILED, 2 when the testbed\n" +
			"could not start (a bad flag, a busy port, a --dir it cannot use).\n" +
			"Cases: " + strings.Join(testbed.Names()[:8], ", ") + ",\n" + strings.Join(testbed.Names()[8:], ", ") + ".",
		OnUsageError: usageErr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: defaultTestbedDir, Usage: "`DIR`ectory of the testbed's PKI (its CA is kept, the rest made afresh)"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1", Usage: "`HOST` (IP address) to listen on"},
			&cli.IntFlag{Name: "base-port", Value: testbed.DefaultBasePort,
				Usage: "`PORT` of the first case; each case has a fixed port after it, the HTTP server (CRLs, intermediate) the last"},
			&cli.StringFlag{Name: "cases", Usage: "comma-separated `CASES` to open (default: all)"},
			&cli.StringFlag{Name: "duration", Value: "0", Usage: "stop and print the report card after this `DURATION` (0: at Ctrl-C)"},
			&cli.IntFlag{Name: "exit-after", Usage: "stop and print the report card after `N` graded connections (0: no limit)"},
			&cli.StringFlag{Name: "slow-for", Value: testbed.DefaultSlowFor.String(),
				Usage: "how long slow-handshake stalls, and how long a client may hang (abort-mid-handshake) or stay silent after accepting a bad server, a `DURATION`"},
			&cli.BoolFlag{Name: "json", Usage: "print the report card as JSON on stdout (the table and grades go to stderr)"},
			&cli.StringFlag{Name: "client-cert", Usage: "certificate `FILE` (PEM) your client presents, if not the testbed's client.pem: require-client-cert accepts it"},
			&cli.StringFlag{Name: "client-key", Usage: "private key `FILE` (PEM) of --client-cert, for the printed commands"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageError{fmt.Errorf("testbed takes no arguments, got %q", c.Args().First())}
			}
			return runTestbed(c, stdout, stderr)
		},
	}
}

// testbedSettings are the testbed's flags, checked.
type testbedSettings struct {
	dir, host             string
	basePort              int
	cases                 []testbed.Case
	duration, slowFor     time.Duration
	exitAfter             int
	json                  bool
	clientCert, clientKey string
	clientIssuers         *tls.Certificate
}

func testbedFlags(c *cli.Context) (testbedSettings, error) {
	s := testbedSettings{dir: c.String("dir"), host: c.String("addr"), basePort: c.Int("base-port"),
		exitAfter: c.Int("exit-after"), json: c.Bool("json"),
		clientCert: c.String("client-cert"), clientKey: c.String("client-key")}
	if net.ParseIP(s.host) == nil {
		return s, fmt.Errorf("invalid --addr %q: want an IP address, such as 127.0.0.1 or ::1", s.host)
	}
	if s.basePort < 1 || s.basePort+testbed.HTTPOffset > 65535 {
		return s, fmt.Errorf("invalid --base-port %d: want 1 to %d (the testbed uses %d ports from it)",
			s.basePort, 65535-testbed.HTTPOffset, testbed.HTTPOffset+1)
	}
	var err error
	if c.IsSet("cases") && len(splitList(c.String("cases"))) == 0 {
		return s, fmt.Errorf("invalid --cases %q: name at least one case (the cases: %s)", c.String("cases"), strings.Join(testbed.Names(), ", "))
	}
	if s.cases, err = testbed.Select(splitList(c.String("cases"))); err != nil {
		return s, fmt.Errorf("invalid --cases: %w", err)
	}
	if s.duration, err = config.ParseDuration(c.String("duration")); err != nil || s.duration < 0 {
		return s, fmt.Errorf("invalid --duration %q: want a duration such as 30s or 5m, or 0", c.String("duration"))
	}
	if s.slowFor, err = config.ParseDuration(c.String("slow-for")); err != nil || s.slowFor <= 0 {
		return s, fmt.Errorf("invalid --slow-for %q: want a duration such as 15s", c.String("slow-for"))
	}
	if s.exitAfter < 0 {
		return s, fmt.Errorf("invalid --exit-after %d: want 0 or more", s.exitAfter)
	}
	if (s.clientCert == "") != (s.clientKey == "") {
		return s, errors.New("--client-cert and --client-key go together")
	}
	if s.clientCert != "" {
		pair, err := tls.LoadX509KeyPair(s.clientCert, s.clientKey)
		if err != nil {
			return s, fmt.Errorf("invalid --client-cert/--client-key: %w", err)
		}
		s.clientIssuers = &pair
	}
	return s, nil
}

// connectHost is the address a client on this machine dials for host.
func connectHost(host string) string {
	ip := net.ParseIP(host)
	switch {
	case ip.Equal(net.IPv4zero):
		return "127.0.0.1"
	case ip.Equal(net.IPv6unspecified):
		return "::1"
	}
	return host
}

func runTestbed(c *cli.Context, stdout, stderr io.Writer) error {
	s, err := testbedFlags(c)
	if err != nil {
		return usageError{err}
	}
	host := connectHost(s.host)
	httpBase := "http://" + net.JoinHostPort(host, strconv.Itoa(s.basePort+testbed.HTTPOffset))
	mopts := testbed.MaterialOptions{HTTPBase: httpBase, BasePort: s.basePort, Host: host}
	if !net.ParseIP(host).IsLoopback() {
		mopts.Hosts = []string{host}
	}
	if s.clientIssuers != nil {
		for _, der := range s.clientIssuers.Certificate {
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return usageError{fmt.Errorf("invalid --client-cert: %w", err)}
			}
			mopts.ClientIssuers = append(mopts.ClientIssuers, cert)
		}
	}
	m, err := testbed.NewMaterial(s.dir, mopts)
	if err != nil {
		return usageError{err} // exit 2: 1 is for a failed case
	}
	clientCert, clientKey := m.ClientCertFile, m.ClientKeyFile
	if s.clientCert != "" {
		clientCert, clientKey = s.clientCert, s.clientKey
	}

	// The table and the grades go to stdout, or to stderr when stdout
	// is for the JSON card.
	out := stdout
	if s.json {
		out = stderr
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if s.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, s.duration)
		defer cancel()
	}
	var graded atomic.Int64
	tb, err := testbed.Listen(testbed.Options{
		Host: s.host, BasePort: s.basePort, Cases: s.cases, Material: m, SlowFor: s.slowFor,
		Graded: func(g testbed.Grade) {
			fmt.Fprintln(out, g)
			if g.Result != testbed.NotGraded && s.exitAfter > 0 && graded.Add(1) == int64(s.exitAfter) {
				cancel()
			}
		},
		Fetched: func(client, path string) {
			fmt.Fprintf(out, "[testbed] http: %s fetched %s\n", client, path)
		},
	})
	if err != nil {
		var pe *testbed.PortError
		if errors.As(err, &pe) {
			hint := "another program (or testbed) has the port; choose another --base-port, or fewer --cases"
			if pe.Case == "" {
				hint = "another program (or testbed) has the port; choose another --base-port"
			}
			return usageError{hintError{err, hint}}
		}
		return usageError{err}
	}
	printTestbedTable(out, s, m, host, clientCert, clientKey)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
			return
		}
		<-sigs
		fmt.Fprintln(stderr, "seclisten: second signal: exiting now")
		os.Exit(exitError)
	}()
	tb.Serve(ctx)

	card := tb.Card()
	if s.json {
		err = card.WriteJSON(stdout)
	} else {
		fmt.Fprintln(stdout)
		err = card.WriteTable(stdout)
	}
	if err != nil {
		return err
	}
	if card.Failed() {
		return quietExit(exitError)
	}
	return nil
}

// printTestbedTable prints what is listening where, and how to try it.
func printTestbedTable(w io.Writer, s testbedSettings, m *testbed.Material, host, clientCert, clientKey string) {
	first, last := s.cases[0], s.cases[len(s.cases)-1]
	where := fmt.Sprintf("%d cases on %s, ports %d-%d", len(s.cases), s.host, s.basePort+first.Offset, s.basePort+last.Offset)
	if len(s.cases) == 1 {
		where = fmt.Sprintf("1 case on %s, port %d", s.host, s.basePort+first.Offset)
	}
	fmt.Fprintf(w, "seclisten testbed: %s; CRLs and the intermediate on %s\n", where, m.HTTPBase)
	fmt.Fprintf(w, "PKI in %s: give your client %s as its only trust anchor (%s/README.md explains each case)\n\n",
		s.dir, m.CAFile, s.dir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PORT\tCASE\tA CORRECT CLIENT\tTRY IT\n")
	for _, c := range s.cases {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.basePort+c.Offset, c.Name, c.Expect, c.OpenSSL(host, s.basePort, s.dir, clientCert, clientKey))
	}
	_ = tw.Flush()
	stop := "Ctrl-C"
	if s.duration > 0 {
		stop = "the end of --duration " + s.duration.String() + " (or Ctrl-C)"
	}
	fmt.Fprintf(w, "\nGrading every connection; %s prints the report card.\n", stop)
}
