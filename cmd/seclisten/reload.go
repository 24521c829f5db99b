package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/server"
)

// settings are what one parse of the serve flags gave: the Config, and
// each flag's value as the user wrote it (for the reload's diff).
type settings struct {
	cfg    config.Config
	values map[string]string
	// file is the configuration file, "" if none.
	file string
	// keys counts the keys of the file in force (those no flag or
	// variable overrides).
	keys int
}

// parsed collects the settings of a parsed serve command line.
func parsed(c *cli.Context, cfg config.Config, fromFile map[string]bool) settings {
	st := settings{cfg: cfg, values: map[string]string{}, file: c.String(flagConfig), keys: len(fromFile)}
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if name == flagConfig || name == "help" {
			continue
		}
		switch f.(type) {
		case *cli.StringSliceFlag:
			b, _ := json.Marshal(append([]string{}, c.StringSlice(name)...))
			st.values[name] = string(b)
		case *cli.BoolFlag:
			st.values[name] = strconv.FormatBool(c.Bool(name))
		default:
			st.values[name] = secretValue(name, showValue(c.String(name)))
		}
	}
	return st
}

// secretValue is how a flag's value v is shown wherever values are shown
// (check's flag lines, the reload's log): as is, except a secret. The
// ACME account's HMAC key is shown as "(set)" or "" (not set); a Redis
// URL with its password replaced by xxxxx.
func secretValue(name, v string) string {
	switch name {
	case flagACMEEABHMAC:
		if v != `""` {
			return "(set)"
		}
	case flagRedis:
		s, err := strconv.Unquote(v)
		if err != nil {
			return v
		}
		if u, err := url.Parse(s); err == nil {
			return strconv.Quote(u.Redacted())
		}
		return `"(not a URL)"`
	}
	return v
}

// bareValue matches the values shown without quotes: numbers, durations
// and sizes.
var bareValue = regexp.MustCompile(`^[0-9.]+[a-zA-Z]*$`)

func showValue(s string) string {
	if bareValue.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

// parseServe parses a serve command line (args as os.Args) again, with the
// configuration file and the environment read anew: what a reload does.
// It is the parse serve did at start: the same flags, the same
// configFromFlags.
//
// resolve, if set, runs before the parse, as at start: it names the
// sockets the service manager passed (socket activation).
func parseServe(args []string, resolve func(*cli.Context) error) (settings, error) {
	var st settings
	var perr error
	app := &cli.App{
		Name:           "seclisten",
		Writer:         io.Discard,
		ErrWriter:      io.Discard,
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{{
			Name:  "serve",
			Flags: withEnvVars(serveFlags()),
			Action: func(c *cli.Context) error {
				if resolve != nil {
					if err := resolve(c); err != nil {
						perr = err
						return nil
					}
				}
				cfg, fromFile, err := parseFlags(c, args)
				st, perr = parsed(c, cfg, fromFile), err
				return nil
			},
		}},
	}
	if err := app.Run(args); err != nil {
		return st, err
	}
	return st, perr
}

// reload reads the configuration again and, if it is good, puts its policy
// in service; the log says what changed, or every problem found.
func reload(srv *server.Server, log *slog.Logger, args []string, start settings, cur *settings, resolve func(*cli.Context) error) {
	next, err := parseServe(args, resolve)
	if err != nil {
		srv.ReloadFailed()
		for _, e := range problems(err) {
			log.Warn("reload failed: keeping the policy in service", "problem", oneSentence(e))
		}
		return
	}
	restart, err := srv.Apply(next.cfg)
	if err != nil {
		srv.ReloadFailed()
		log.Warn("reload failed: keeping the policy in service", "problem", oneSentence(err))
		return
	}
	for _, key := range restart {
		log.Warn(fmt.Sprintf("reload: %s changed but needs a restart; keeping %s", key, start.values[key]))
	}
	var changes []string
	for _, key := range slices.Sorted(maps.Keys(next.values)) {
		if old := cur.values[key]; old != next.values[key] && !slices.Contains(restart, key) {
			changes = append(changes, fmt.Sprintf("%s %s -> %s", key, old, next.values[key]))
		}
	}
	if len(changes) == 0 {
		changes = []string{"no change"}
	}
	log.Info("reload: "+strings.Join(changes, ", "), "config", next.file)
	*cur = next
}

// problems splits an error of configFromFlags into its problems; nil has
// none.
func problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
