// Command seclisten is a secure TCP listener: it accepts connections, prints
// every line a client sends, and answers each one.
//
// This package is the only part of seclisten that reads flags or the
// environment, handles signals or exits, and the only one that speaks of
// flags: pkg/ takes typed values and names settings in its own terms,
// which asFlags words as flags. This file holds the app, its exit
// statuses and the serve loop; flags.go and env.go read the settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/batch"
	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/gcfloor"
	"github.com/seclisten/seclisten/pkg/scavenge"
	"github.com/seclisten/seclisten/pkg/server"
	"github.com/seclisten/seclisten/pkg/slogtext"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// heapFloor is the heap goal the collector keeps while little is live
// (pkg/gcfloor).
const heapFloor = 16 << 20

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // could not start or run, or a second signal
	exitUsage = 2 // bad flag, flag value or command
)

func main() {
	unsetEmptyEnv()
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// unsetEmptyEnv removes SECLISTEN_ variables set to the empty string, so that
// an empty variable (a blank line in a systemd EnvironmentFile, say) means
// the default rather than an empty value.
func unsetEmptyEnv() {
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); v == "" && strings.HasPrefix(k, envPrefix) {
			_ = os.Unsetenv(k)
		}
	}
}

// usageError marks errors in what the user typed: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// hintError is an error with advice for the user, printed on a line of its
// own after the error, as age does ("age: hint: ..."): the packages say
// what went wrong in their own terms, and the command says which flag
// changes it.
type hintError struct {
	err  error
	hint string
}

func (e hintError) Error() string { return e.err.Error() }
func (e hintError) Unwrap() error { return e.err }

// quietExit ends a command that has said everything on stdout with an exit
// status: certs check's refusal, say.
type quietExit int

func (e quietExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run runs seclisten with args (args[0] is the program name) and returns the
// exit status. Messages go to stdout, logs and errors to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(args, stdout, stderr)
	if len(args) > 3 && args[1] == "certs" && args[2] == "check" {
		args = append(args[:3:3], flagsFirst(args[3:], map[string]bool{flagCRLAllowStale: true, flagCRLFetch: true, "help": true, "h": true})...)
	}
	err := app.Run(args)
	if err == nil {
		return exitOK
	}
	var q quietExit
	if errors.As(err, &q) {
		return int(q)
	}
	fmt.Fprintf(stderr, "seclisten: %s\n", oneSentence(err))
	var he hintError
	if errors.As(err, &he) {
		fmt.Fprintf(stderr, "seclisten: hint: %s\n", he.hint)
	}
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitError
}

// oneSentence trims what urfave/cli adds to its own errors down to one line.
func oneSentence(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

func newApp(args []string, stdout, stderr io.Writer) *cli.App {
	usageErr := func(_ *cli.Context, err error, _ bool) error {
		return usageError{rewriteFlagError(err)}
	}
	// --version and -v print what the version command prints.
	cli.VersionPrinter = func(c *cli.Context) { printVersion(c.App.Writer) }
	return &cli.App{
		Name:            "seclisten",
		Usage:           "a secure TCP listener: prints what clients send and answers each line",
		Version:         version,
		Writer:          stdout,
		ErrWriter:       stderr,
		OnUsageError:    usageErr,
		ExitErrHandler:  func(*cli.Context, error) {}, // run decides the exit status
		CommandNotFound: func(c *cli.Context, cmd string) {},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageError{fmt.Errorf("unknown command %q (see seclisten --help)", c.Args().First())}
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			{
				Name:  "serve",
				Usage: "listen, print every line clients send, and answer each one",
				Description: "Every flag can also be set by the environment variable shown after it, or by the key of its name in the --config file;\n" +
					"the command line wins over the environment, which wins over the file.\n" +
					"A DURATION is written like 30s, 2m or 1h30m; a SIZE in bytes, like 65536, 64KiB or 1MiB.",
				Flags:              withEnvVars(serveFlags()),
				CustomHelpTemplate: serveHelpTemplate,
				OnUsageError:       usageErr,
				Action: func(c *cli.Context) error {
					if c.Args().Present() {
						return usageError{fmt.Errorf("serve takes no arguments, got %q", c.Args().First())}
					}
					// The warnings about unknown variables come first, so
					// that they are seen even if the flags are refused: a
					// misspelt variable can be why. configFromFlags fills
					// the log settings even then (a bad one stays default).
					sd := takeSystemdEnv()
					defer sd.close()
					sdErr := sd.resolveNames(c)
					cfg, fromFile, err := parseFlags(c, args)
					// All that serve writes to stderr goes through one
					// batching writer, in order: under load, the log
					// records of many handshakes cost one write.
					errw := batch.New(stderr)
					defer errw.Flush()
					stderr := errw
					log := newLogger(cfg, errw)
					warnUnknownEnv(log, c.Command.Flags)
					if sd.err != nil {
						return sd.err
					}
					// A socket name that matches none explains why it
					// is no address either.
					if sdErr != nil {
						return usageError{sdErr}
					}
					if err != nil {
						return usageError{err}
					}
					if err := sd.pick(&cfg); err != nil {
						return usageError{err}
					}
					sd.log(log)
					return serve(parsed(c, cfg, fromFile), args, log, stdout, stderr, sd)
				},
			},
			checkCommand(args, stdout, usageErr),
			certsCommand(stdout, usageErr),
			benchCommand(stdout, usageErr),
			testbedCommand(stdout, stderr, usageErr),
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					printVersion(stdout)
					return nil
				},
			},
		},
	}
}

// printVersion prints the version of seclisten and of Go, and the platform.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "seclisten %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// rewriteFlagError turns the flag package's errors into one plain sentence.
func rewriteFlagError(err error) error {
	s := err.Error()
	if name, ok := strings.CutPrefix(s, "flag provided but not defined: -"); ok {
		return fmt.Errorf("unknown flag --%s (see --help)", strings.TrimLeft(name, "-"))
	}
	if name, ok := strings.CutPrefix(s, "flag needs an argument: -"); ok {
		return fmt.Errorf("flag --%s needs a value", strings.TrimLeft(name, "-"))
	}
	if m := envParseError.FindStringSubmatch(s); m != nil {
		return fmt.Errorf("invalid %s: %q is not true or false", m[2], m[1])
	}
	return err
}

// envParseError matches urfave/cli's error for a boolean environment variable
// it cannot parse (the other flags are strings, parsed by configFromFlags).
var envParseError = regexp.MustCompile(`^could not parse "(.*)" as bool value from environment variable "([A-Z0-9_]+)"`)

// serve runs the server until SIGINT or SIGTERM. The first signal starts a
// graceful shutdown; a second one exits at once. If stdout is closed under it (`seclisten serve | head`), it
// shuts down gracefully too, and the exit status is 1.
//
// SIGHUP reads the configuration again (the file, the environment and the
// command line args, as at start) and puts its policy in service (reload).
func serve(start settings, args []string, log *slog.Logger, stdout, stderr io.Writer, sd systemdEnv) error {
	cfg := start.cfg
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Unless the operator tuned the collector, it may let the heap reach
	// 16 MiB before collecting while little is live: a small heap would
	// otherwise be collected every few dozen handshakes (BENCHMARKS.md).
	// And once the server has gone quiet (under 1 MiB allocated in a
	// second), what a collection would give back is given back to the
	// system if it is twice the floor or more: after thousands of clients
	// connect and fall silent, the runtime would keep about as much again
	// as their connections hold. Below that the floor's garbage stays, so
	// a busy spell after a quiet one does not fault it in again.
	var spare *scavenge.Options
	if os.Getenv("GOGC") == "" {
		gcfloor.Keep(heapFloor)
		spare = &scavenge.Options{Free: 2 * heapFloor}
	}

	// With SIGPIPE notified, a write to a closed stdout fails with EPIPE
	// instead of killing the process silently (see os/signal).
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	out := &watchedWriter{w: stdout, failed: func(err error) {
		log.Error("stdout closed: shutting down; what clients already sent is answered, not printed", "err", err)
		cancel()
	}}

	srv, err := server.New(cfg, log, out)
	if err != nil {
		return err
	}
	srv.Listening = func(addr net.Addr) { printTryIt(stderr, cfg, addr) }
	srv.Flags = flagsOf
	srv.Version = version
	srv.Scavenge = spare
	srv.Notifier, srv.Watchdog = sd.notifier, sd.watchdog
	if sd.acmeHTTP != nil {
		srv.ACMEHTTPListener = sd.acmeHTTP.Listener
	}
	if start.file != "" {
		srv.StartAttrs = []any{"config", start.file}
	}
	cur := start

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	go func() {
		for {
			select {
			case <-hup:
				reload(srv, log, args, start, &cur, sd.resolveNames)
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		sig := <-sigs
		log.Info("signal received: shutting down (send it again to exit at once)", "signal", sig.String())
		cancel()
		sig = <-sigs
		log.Warn("second signal: exiting now", "signal", sig.String())
		os.Exit(exitError)
	}()
	run := srv.Run
	if sd.main != nil {
		run = func(ctx context.Context) error { return srv.Serve(ctx, sd.main.Listener) }
	}
	if err := run(ctx); err != nil {
		return err
	}
	if err := out.err(); err != nil {
		return fmt.Errorf("stdout was closed (%w): some messages were answered but not printed", err)
	}
	return nil
}

// watchedWriter passes writes on to w and calls failed, once, at the first
// write error.
type watchedWriter struct {
	w      io.Writer
	failed func(error)
	once   sync.Once
	mu     sync.Mutex
	first  error
}

func (ww *watchedWriter) Write(b []byte) (int, error) {
	n, err := ww.w.Write(b)
	if err != nil {
		ww.once.Do(func() {
			ww.mu.Lock()
			ww.first = err
			ww.mu.Unlock()
			ww.failed(err)
		})
	}
	return n, err
}

func (ww *watchedWriter) err() error {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	return ww.first
}

// newLogger returns the logger of serve, writing to w. A record at warn
// or above is written at once, with all that waits before it: those are
// the records to read if the process then dies.
func newLogger(cfg config.Config, w *batch.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		// slog's text format, with the ClientHello lists of each handshake
		// record rendered once per kind of client (pkg/slogtext).
		h = slogtext.New(w, opts)
	}
	return slog.New(urgent{h, w.Flush})
}

// urgent hands records to a handler, and flushes after each one at warn
// or above.
type urgent struct {
	slog.Handler
	flush func()
}

func (u urgent) Handle(ctx context.Context, r slog.Record) error {
	err := u.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		u.flush()
	}
	return err
}

func (u urgent) WithAttrs(attrs []slog.Attr) slog.Handler {
	return urgent{u.Handler.WithAttrs(attrs), u.flush}
}

func (u urgent) WithGroup(name string) slog.Handler {
	return urgent{u.Handler.WithGroup(name), u.flush}
}
