package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/bench"
	"github.com/seclisten/seclisten/pkg/config"
)

// benchCommand is `seclisten bench`: a bounded load generator for seclisten
// or any TLS/TCP line server. Its flags read no environment variables: the
// SECLISTEN_ ones configure the server (SECLISTEN_CERT is the server's
// certificate, not a client's), and a benchmark should run what was typed.
func benchCommand(stdout io.Writer, usageErr cli.OnUsageErrorFunc) *cli.Command {
	modes := make([]string, len(bench.Modes))
	for i, m := range bench.Modes {
		modes[i] = string(m)
	}
	return &cli.Command{
		Name:  "bench",
		Usage: "measure a TLS/TCP line server: handshakes/s, resumptions/s, echo round trips, memory per idle connection, flood refusals",
		Description: "Every run is bounded by --duration and --max-ops. Progress goes to stderr, the summary to stdout.\n" +
			"The exit status is 1 when more than --max-error-rate of the operations failed; the summary counts the\n" +
			"failures by kind and names the likely cause when the server refused or closed most of them.\n" +
			"Modes: handshake (full handshakes), resume (session tickets), echo (--conns persistent connections,\n" +
			"closed loop), idle (hold --conns connections; with --pid, server KiB per connection), flood (connect as\n" +
			"fast as possible from --source; count accepted and refused).",
		OnUsageError: usageErr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mode", Value: string(bench.Handshake), Usage: "what to measure, a `MODE`: " + strings.Join(modes, ", ")},
			&cli.StringFlag{Name: "addr", Usage: "`HOST:PORT` of the server (required)"},
			&cli.BoolFlag{Name: "plain", Usage: "plain TCP instead of TLS"},
			&cli.StringFlag{Name: "duration", Value: "10s", Usage: "how long to measure, a `DURATION` (echo, idle: after opening the connections)"},
			&cli.StringFlag{Name: "max-ops", Value: strconv.Itoa(bench.DefaultMaxOps), Usage: "stop after `N` operations"},
			&cli.StringFlag{Name: "concurrency",
				Usage: "`N` workers (handshake, resume, flood), or connections opened at once (echo, idle) (default: 2 per CPU)"},
			&cli.StringFlag{Name: "conns", Value: strconv.Itoa(bench.DefaultConns), Usage: "`N` connections of echo and idle"},
			&cli.StringFlag{Name: "tls-version", Usage: "pin the TLS `VERSION`: 1.2 or 1.3 (default: negotiated)"},
			&cli.StringFlag{Name: "group", Usage: "key exchange `GROUPS` offered, comma-separated: X25519, X25519MLKEM768, P256, P384 (default: Go's)"},
			&cli.StringFlag{Name: "cert", Usage: "client certificate `FILE` (PEM), for mTLS servers"},
			&cli.StringFlag{Name: "key", Usage: "private key `FILE` (PEM) of --cert"},
			&cli.StringFlag{Name: "ca", Usage: "CA `FILE` (PEM) to verify the server with (default: not verified)"},
			&cli.StringFlag{Name: "sni", Usage: "server `NAME` to send and verify (default: the host of --addr)"},
			&cli.StringFlag{Name: "source", Usage: "local `ADDRS` to connect from, comma-separated, used in turn (e.g. 127.0.0.2,127.0.0.3)"},
			&cli.StringFlag{Name: "message", Value: bench.DefaultMessage, Usage: "`TEXT` of the line sent in each exchange"},
			&cli.StringFlag{Name: "pid", Usage: "server process `ID`: idle reports its memory per connection from /proc"},
			&cli.StringFlag{Name: "max-error-rate", Value: bench.Percent(bench.DefaultMaxErrorRate),
				Usage: "exit with status 1 when more than `RATE` of the operations failed: a percentage (1%) or a fraction (0.01)"},
			&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageError{fmt.Errorf("bench takes no arguments, got %q", c.Args().First())}
			}
			opts, maxErrorRate, err := benchOptions(c)
			if err != nil {
				return usageError{err}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, runErr := bench.Run(ctx, opts, os.Stderr)
			if runErr != nil && !errors.Is(runErr, bench.ErrNoSuccess) {
				return runErr
			}
			// Operations were attempted: the summary shows how they
			// failed, even when none succeeded.
			res.Advice = benchAdvice(res.Diagnose())
			if err := writeBenchSummary(stdout, res, c.Bool("json")); err != nil {
				return err
			}
			if rate := res.ErrorRate(); rate > maxErrorRate {
				if runErr != nil {
					return runErr // no connection succeeded: and the first error
				}
				return fmt.Errorf("%s of the operations failed (%d of %d), more than --max-error-rate %s allows",
					bench.Percent(rate), res.Errors, res.Attempted(), bench.Percent(maxErrorRate))
			}
			return nil
		},
	}
}

// writeBenchSummary writes res as a table, or with asJSON as one JSON
// object on one line.
func writeBenchSummary(w io.Writer, res bench.Result, asJSON bool) error {
	if !asJSON {
		return res.WriteTable(w)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// benchAdvice words a run's diagnosis for someone benchmarking seclisten:
// a load generator is one client address with many connections, which
// is what seclisten's per-IP limits exist to refuse.
func benchAdvice(d bench.Diagnosis) string {
	limits := fmt.Sprintf("most likely its per-IP limits (--%s, --%s, --%s); start it with --%s 0 --%s 0, or bench from several addresses (--source)",
		flagRate, flagBurst, flagMaxConnsPerIP, flagRate, flagMaxConnsPerIP)
	switch d.Cause {
	case bench.CauseServerRefused:
		return fmt.Sprintf("the server refused %d connections: %s", d.N, limits)
	case bench.CauseServerClosed:
		return fmt.Sprintf("the server refused or closed %d connections: %s", d.N, limits)
	}
	return ""
}

// benchOptions builds bench.Options and the acceptable error rate from the
// flags. Its errors are one sentence naming the flag.
func benchOptions(c *cli.Context) (bench.Options, float64, error) {
	o, err := benchRunOptions(c)
	if err != nil {
		return o, 0, err
	}
	rate, err := bench.ParseFraction(c.String("max-error-rate"))
	if err != nil {
		return o, 0, fmt.Errorf("invalid --max-error-rate: %w", err)
	}
	return o, rate, asFlags(o.Validate(), benchFlag)
}

// benchFlag is the flag that sets a field of bench.Options, which names
// its fields in its errors; a field no flag sets keeps its name.
func benchFlag(field string) string {
	if f, ok := benchFlags[field]; ok {
		return "--" + f
	}
	return field
}

// benchFlags maps the fields of bench.Options to their flags.
var benchFlags = map[string]string{
	"Mode": "mode", "Addr": "addr", "Plain": "plain", "Duration": "duration", "MaxOps": "max-ops",
	"Concurrency": "concurrency", "Conns": "conns", "TLSVersion": "tls-version", "Groups": "group",
	"CertFile": "cert", "KeyFile": "key", "CAFile": "ca", "ServerName": "sni", "Sources": "source",
	"Message": "message", "PID": "pid",
}

// benchRunOptions builds bench.Options from the flags.
func benchRunOptions(c *cli.Context) (bench.Options, error) {
	o := bench.Options{
		Addr:       c.String("addr"),
		Plain:      c.Bool("plain"),
		CertFile:   c.String("cert"),
		KeyFile:    c.String("key"),
		CAFile:     c.String("ca"),
		ServerName: c.String("sni"),
		Message:    c.String("message"),
	}
	var err error
	if o.Mode, err = bench.ParseMode(c.String("mode")); err != nil {
		return o, fmt.Errorf("invalid --mode: %w", err)
	}
	if o.Duration, err = config.ParseDuration(c.String("duration")); err != nil {
		return o, fmt.Errorf("invalid --duration: %w", err)
	}
	if o.Duration <= 0 {
		return o, fmt.Errorf("--duration must be a positive duration, got %s", c.String("duration"))
	}
	ints := []struct {
		flag string
		dst  *int
		zero bool // zero allowed (means "unset")
	}{
		{"concurrency", &o.Concurrency, true},
		{"conns", &o.Conns, false},
		{"pid", &o.PID, true},
	}
	for _, f := range ints {
		s := c.String(f.flag)
		if s == "" && f.zero {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("--%s must be a positive whole number, got %q", f.flag, s)
		}
		*f.dst = n
	}
	maxOps, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(c.String("max-ops")), "_", ""), 10, 64)
	if err != nil || maxOps < 1 {
		return o, fmt.Errorf("--max-ops must be a positive whole number, got %q", c.String("max-ops"))
	}
	o.MaxOps = maxOps
	if o.TLSVersion, err = bench.ParseTLSVersion(c.String("tls-version")); err != nil {
		return o, fmt.Errorf("invalid --tls-version: %w", err)
	}
	if o.Groups, err = bench.ParseGroups(c.String("group")); err != nil {
		return o, fmt.Errorf("invalid --group: %w", err)
	}
	if o.Sources, err = bench.ParseSources(c.String("source")); err != nil {
		return o, fmt.Errorf("invalid --source: %w", err)
	}
	// Progress as one line rewritten in place only on a terminal; a log
	// file or pipe gets one line a second.
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		o.Interactive = true
	}
	return o, nil
}
