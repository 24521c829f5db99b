package main

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// `check` shows the value in force of every flag of serve, in the line of
// its category, after the configuration file, the environment and the
// command line; the only flags it leaves out are --config (its config
// line names the file) and the hidden ones (not in --help either); a
// secret is shown only as set (the HMAC) or redacted (a Redis password).
// A flag added to serveFlags without a value in check's output fails here.
func TestCheckFlags(t *testing.T) {
	f := writeFile(t, "seclisten.toml", "park-after = \"3s\"\nwrite-timeout = \"1s\"\n")
	cmd := seclistenCmd(t, "check", "--config", f, "--write-timeout", "7s",
		"--acme-eab-hmac", "SECRETHMAC", "--redis", "redis://:hunter2@127.0.0.1:1/0")
	cmd.Env = append(cmd.Env, "SECLISTEN_IDLE_TIMEOUT=90s")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitError { // the HMAC needs ACME
		t.Errorf("exit %d, want 1:\n%s", code, out)
	}
	for _, secret := range []string{"SECRETHMAC", "hunter2"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("output shows the secret %q:\n%s", secret, out)
		}
	}

	// shown[category][flag] is the value check shows.
	shown := map[string]map[string]string{}
	for _, line := range splitLines(string(out)) {
		rest, ok := strings.CutPrefix(line, "flags, ")
		if !ok {
			continue
		}
		cat, list, ok := strings.Cut(rest, ": ")
		if !ok {
			t.Fatalf("flag line without a category: %q", line)
		}
		shown[cat] = map[string]string{}
		for part := range strings.SplitSeq(list, ", ") {
			name, value, _ := strings.Cut(part, " ")
			shown[cat][name] = value
		}
	}
	for _, fl := range withEnvVars(serveFlags()) {
		name := fl.Names()[0]
		cat := fl.(cli.CategorizableFlag).GetCategory()
		v, ok := shown[cat][name]
		switch {
		case name == flagConfig || !fl.(cli.VisibleFlag).IsVisible():
			if ok {
				t.Errorf("--%s shown (%s), want it left out", name, v)
			}
		case !ok:
			t.Errorf("--%s (category %s) is not in check's output:\n%s", name, cat, out)
		}
	}
	for name, want := range map[string]string{
		flagParkAfter:    "3s",               // from the file
		flagIdleTimeout:  "90s",              // from the environment
		flagWriteTimeout: "7s",               // the command line wins over the file
		flagAddr:         `"127.0.0.1:8443"`, // the default address in force
		flagClientAuth:   `"none"`,
		flagCRLFetch:     "false",
		flagACMEEABHMAC:  "(set)",
		flagACMEEABKID:   `""`,
		flagRedis:        `"redis://:xxxxx@127.0.0.1:1/0"`,
	} {
		var got string
		for _, m := range shown {
			if v, ok := m[name]; ok {
				got = v
			}
		}
		if got != want {
			t.Errorf("--%s shown as %s, want %s", name, got, want)
		}
	}
}
