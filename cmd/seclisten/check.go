package main

import (
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/server"
)

// checkCommand is `seclisten check`: everything serve would do with the
// same flags, configuration file and environment, short of listening. It
// prints one line per section and exits 0, or 1 listing every problem.
// A usage error (an unknown flag) is exit status 2, as for serve.
func checkCommand(args []string, stdout io.Writer, usageErr cli.OnUsageErrorFunc) *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check the configuration, certificates, client CAs, CRLs and limits serve would use, without listening",
		Description: "Takes the flags of serve, and its configuration file (--config) and environment, with the same precedence.\n" +
			"Prints one line per section; exits 0 if serve would start, 1 listing every problem otherwise.",
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
