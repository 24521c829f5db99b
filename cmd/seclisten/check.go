package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/server"
)

// checkCommand is `seclisten check`: everything serve would do with the
// same flags, configuration file and environment, short of listening. It
// prints one line per section, then the value in force of every flag
// (flagLines), and exits 0, or 1 listing every problem.
// A usage error (an unknown flag) is exit status 2, as for serve.
func checkCommand(args []string, stdout io.Writer, usageErr cli.OnUsageErrorFunc) *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check the configuration, certificates, client CAs, CRLs and limits serve would use, without listening",
		Description: "Takes the flags of serve, and its configuration file (--config) and environment, with the same precedence.\n" +
			"Prints one line per section, then the value in force of every flag by category (secrets only as set);\n" +
			"exits 0 if serve would start, 1 listing every problem otherwise.",
		Flags:              withEnvVars(serveFlags()),
		CustomHelpTemplate: serveHelpTemplate,
		OnUsageError:       usageErr,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageError{fmt.Errorf("check takes no arguments, got %q", c.Args().First())}
			}
			cfg, fromFile, err := parseFlags(c, args)
			bad := problems(err)
			st := parsed(c, cfg, fromFile)
			failed := false
			line := func(name, summary string, errs []error) {
				if len(errs) == 0 {
					fmt.Fprintf(stdout, "%s: %s\n", name, summary)
					return
				}
				failed = true
				fmt.Fprintf(stdout, "%s: %s\n", name, plural(len(errs), "problem"))
				for _, e := range errs {
					fmt.Fprintf(stdout, "  - %s\n", oneSentence(e))
				}
			}
			where := "no configuration file"
			if st.file != "" {
				where = fmt.Sprintf("%s, %s set", st.file, plural(st.keys, "key"))
			}
			line("config", "ok ("+where+")", bad)
			for _, s := range server.Check(cfg, time.Now()) {
				line(s.Name, s.Summary, s.Problems)
			}
			for _, l := range flagLines(c.Command.Flags, st) {
				fmt.Fprintln(stdout, l)
			}
			if failed {
				return quietExit(exitError)
			}
			return nil
		},
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// flagLines are check's last lines: the value in force of every flag of
// serve (after the configuration file, the environment and the command
// line), one line per category, in the order of --help, as in
//
//	flags, timeouts: handshake-timeout 10s, idle-timeout 2m, park-after 1s, ...
//
// Left out: --config (the config line names it) and the hidden flags,
// which are not in --help either (knobs for the tests). A secret is shown
// only as set or not (settings.values, secretValue). A flag whose default
// depends on others shows what it comes to: --addr the address listened
// on, --client-auth the mode in force, --crl-fetch whether CRLs are
// fetched.
func flagLines(flags []cli.Flag, st settings) []string {
	effective := map[string]string{
		flagAddr:       showValue(st.cfg.ListenAddr()),
		flagClientAuth: showValue(st.cfg.TLS.ClientAuthMode().String()),
		flagCRLFetch:   fmt.Sprint(st.cfg.TLS.CRLFetchOn()),
	}
	var lines []string
	cat := ""
	var parts []string
	flush := func() {
		if len(parts) > 0 {
			lines = append(lines, fmt.Sprintf("flags, %s: %s", cat, strings.Join(parts, ", ")))
		}
		parts = nil
	}
	for _, f := range flags {
		name := f.Names()[0]
		v, ok := st.values[name]
		if !ok || checkOmits(f) {
			continue
		}
		if e, ok := effective[name]; ok {
			v = e
		}
		if c := f.(cli.CategorizableFlag).GetCategory(); c != cat {
			flush()
			cat = c
		}
		parts = append(parts, name+" "+v)
	}
	flush()
	return lines
}

// checkOmits reports whether check leaves flag f out of its flag lines:
// a hidden flag.
func checkOmits(f cli.Flag) bool {
	vf, ok := f.(cli.VisibleFlag)
	return ok && !vf.IsVisible()
}
