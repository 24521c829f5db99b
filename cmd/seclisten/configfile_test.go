package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

var update = flag.Bool("update", false, "rewrite scripts/seclisten.toml from the flag definitions")

// nonDefault holds, for each serve flag that takes a value, a value other
// than its default (several for a list flag). A flag added to serveFlags
// needs one here: TestConfigFileRoundTrip says so.
func nonDefault(t *testing.T) map[string][]string {
	dir := t.TempDir()
	file := func(name string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	return map[string][]string{
		flagAddr: {"127.0.0.1:9999"}, flagReply: {"pong"}, flagExitAfter: {"3"}, flagMaxLine: {"1KiB"},
		flagMaxConns: {"50"}, flagCert: {file("c.pem")}, flagKey: {file("k.pem")}, flagTLSMin: {"1.3"},
		flagALPN: {"h2", "x"}, flagKeyLog: {filepath.Join(dir, "keylog")}, flagClientCA: {file("ca.pem"), file("ca2.pem")},
		flagClientAuth: {"audit"}, flagAllowCN: {"alice", "bob"}, flagAllowOU: {"ou"}, flagAllowDNS: {"a.example"},
		flagAllowURI: {"spiffe://x/y"}, flagCRL: {file("crl.pem")}, flagClientCertWarn: {"3d"}, flagCertWarn: {"2d"},
		flagCRLMaxSize: {"1MiB"}, flagRevocationFail: {"open"}, flagBanAfter: {"5/2m"}, flagBanFor: {"1m"}, flagBanMax: {"2h"},
		flagClientCANames: {"hide"}, flagRate: {"2.5"}, flagBurst: {"7"}, flagMaxConnsPerIP: {"5"},
		flagMsgRate: {"9"}, flagMsgBurst: {"4"}, flagAllowCIDR: {"10.0.0.0/8"}, flagDenyCIDR: {"10.1.0.0/16", "::1/128"},
		flagIPv6Prefix: {"48"}, flagTrustedProxy: {"192.0.2.0/24"}, flagRejectLogEvery: {"7s"},
		flagHandshakeTimeout: {"3s"}, flagIdleTimeout: {"4s"}, flagParkAfter: {"7s"}, flagWriteTimeout: {"5s"}, flagMaxLifetime: {"1h"},
		flagShutdownTimeout: {"6s"}, flagLogFormat: {"json"}, flagLogLevel: {"debug"}, flagMetricsAddr: {"127.0.0.1:9464"},
		flagACMEDomain: {"example.com", "example.org"}, flagACMEEmail: {"a@example.com"}, flagACMECA: {"https://ca.example/dir"},
		flagACMECARoot: {file("root.pem")}, flagACMEEABKID: {"kid"}, flagACMEEABHMAC: {"aG1hYw"},
		flagACMEProfile: {"shortlived"}, flagACMEStorage: {filepath.Join(dir, "acme")}, flagACMEHTTPAddr: {"off"},
		flagACMEAltHTTPPort: {"8080"}, flagACMEAltTLSALPNPort: {"8444"}, flagACMEOnDemandAllow: {"*.example.com"},
		flagACMEAsk: {"http://127.0.0.1/ask"}, flagACMERenewCheck: {"1m"},
		flagRedis: {"redis://127.0.0.1:6380/2"}, flagRedisPrefix: {"fleet1:"}, flagRedisFail: {"closed"},
		flagTicketKeyRotation: {"1h"}, flagRedisLockTTL: {"30s"},
	}
}

// tomlValue writes a flag's value as a user would in the file: a number
// bare, anything else as a string.
func tomlValue(s string) string {
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s
	}
	return strconv.Quote(s)
}

// writeFile writes a file in a test's temporary directory.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// clearEnv unsets the SECLISTEN_ variables for an in-process parse.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix) {
			t.Setenv(k, "")
			_ = os.Unsetenv(k)
		}
	}
}

// Every key round-trips: a file setting every serve flag to a value other
// than its default gives the Config the same flags give on the command
// line, the lists as TOML arrays or as one comma-separated string.
func TestConfigFileRoundTrip(t *testing.T) {
	clearEnv(t)
	values := nonDefault(t)
	args := []string{"seclisten", "serve"}
	var arrays, commas strings.Builder
	for _, f := range serveFlags() {
		name := f.Names()[0]
		if name == flagConfig {
			continue
		}
		if _, ok := f.(*cli.BoolFlag); ok {
			args = append(args, "--"+name)
			fmt.Fprintf(&arrays, "%s = true\n", name)
			fmt.Fprintf(&commas, "%s = true\n", name)
			continue
		}
		v, ok := values[name]
		if !ok {
			t.Errorf("--%s: add a value other than its default to nonDefault", name)
			continue
		}
		for _, s := range v {
			args = append(args, "--"+name, s)
		}
		if _, list := f.(*cli.StringSliceFlag); list {
			quoted := make([]string, len(v))
			for i, s := range v {
				quoted[i] = strconv.Quote(s)
			}
			fmt.Fprintf(&arrays, "%s = [%s]\n", name, strings.Join(quoted, ", "))
			fmt.Fprintf(&commas, "%s = %q\n", name, strings.Join(v, ","))
			continue
		}
		fmt.Fprintf(&arrays, "%s = %s\n", name, tomlValue(v[0]))
		fmt.Fprintf(&commas, "%s = %s\n", name, tomlValue(v[0]))
	}
	want, _ := parseServe(args, nil)
	if reflect.DeepEqual(want.cfg, mustDefault(t)) {
		t.Fatal("the flags gave the default Config")
	}
	for name, text := range map[string]string{"arrays": arrays.String(), "comma strings": commas.String()} {
		t.Run(name, func(t *testing.T) {
			f := writeFile(t, "seclisten.toml", text)
			got, _ := parseServe([]string{"seclisten", "serve", "--config", f}, nil)
			if !reflect.DeepEqual(got.cfg, want.cfg) {
				t.Errorf("from the file:\n%+v\nfrom the flags:\n%+v", got.cfg, want.cfg)
			}
			if !reflect.DeepEqual(got.values, want.values) {
				t.Errorf("flag values from the file:\n%v\nfrom the flags:\n%v", got.values, want.values)
			}
			if got.keys != len(want.values) {
				t.Errorf("%d keys set, want %d", got.keys, len(want.values))
			}
		})
	}
}

func mustDefault(t *testing.T) any {
	st, err := parseServe([]string{"seclisten", "serve"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st.cfg
}

// The file comes first, then the environment, then the command line.
func TestConfigFilePrecedence(t *testing.T) {
	file := writeFile(t, "seclisten.toml", "reply = \"file\"\ndeny-cidr = [\"10.0.0.0/8\"]\nmax-conns-per-ip = 3\n")
	for _, tt := range []struct {
		name  string
		env   map[string]string
		flags []string
		reply string
		deny  string
		perIP int
	}{
		{"file", nil, nil, "file", "[10.0.0.0/8]", 3},
		{"environment over file", map[string]string{"SECLISTEN_REPLY": "env", "SECLISTEN_DENY_CIDR": "10.1.0.0/16,10.2.0.0/16"}, nil,
			"env", "[10.1.0.0/16 10.2.0.0/16]", 3},
		{"flag over environment", map[string]string{"SECLISTEN_REPLY": "env"}, []string{"--reply", "flag", "--max-conns-per-ip", "4"},
			"flag", "[10.0.0.0/8]", 4},
		{"config named by the environment", map[string]string{"SECLISTEN_CONFIG": file}, nil, "file", "[10.0.0.0/8]", 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := []string{"seclisten", "serve"}
			if tt.env["SECLISTEN_CONFIG"] == "" {
				args = append(args, "--config", file)
			}
			st, err := parseServe(append(args, tt.flags...), nil)
			if err != nil {
				t.Fatal(err)
			}
			deny := fmt.Sprint(st.cfg.Limits.DenyCIDR)
			if st.cfg.Reply != tt.reply || deny != tt.deny || st.cfg.Limits.MaxConnsPerIP != tt.perIP {
				t.Errorf("reply %q, deny-cidr %s, max-conns-per-ip %d; want %q, %s, %d",
					st.cfg.Reply, deny, st.cfg.Limits.MaxConnsPerIP, tt.reply, tt.deny, tt.perIP)
			}
		})
	}
}

// Each bad file is one sentence naming the file, the line and the key,
// and exit status 2.
func TestConfigFileErrors(t *testing.T) {
	for _, tt := range []struct {
		name, text, want string
	}{
		{"unknown key, with a suggestion", "reply = \"x\"\nmax-conn-per-ip = 3\n",
			`FILE:2: unknown key "max-conn-per-ip"; did you mean max-conns-per-ip?`},
		{"unknown key, nothing near", "reply = \"x\"\nwhatever = 3\n",
			`FILE:2: unknown key "whatever" (the keys are the flags of seclisten serve --help)`},
		{"not a whole number", "\n\nmax-conns-per-ip = \"lots\"\n", `FILE:3: max-conns-per-ip: "lots" is not a whole number`},
		{"a switch given a string", "once = \"yes\"\n", `FILE:1: once: "yes" is not true or false`},
		{"a list given a number", "allow-cn = 3\n", `FILE:1: allow-cn: 3 is not a string or a list of strings`},
		{"a list of numbers", "allow-cn = [\"a\", 3]\n", `FILE:1: allow-cn: 3 in the list is not a string`},
		{"a value given a list", "reply = [\"a\"]\n", `FILE:1: reply: a list is not a string or a number`},
		{"a table", "[tls]\ncert = \"x\"\n", `FILE:1: unknown key "tls" (the keys are the flags of seclisten serve --help)`},
		{"bad CIDR", "reply = \"x\"\ndeny-cidr = [\"10.0.0.0/33\"]\n",
			`FILE:2: deny-cidr: "10.0.0.0/33" is not a CIDR prefix like 10.0.0.0/8 or 2001:db8::/32`},
		{"missing certificate", "cert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
			`FILE:1: cert: open /nonexistent/cert.pem: no such file or directory`},
		{"an enumeration", "\ntls-min = \"1.1\"\n", `FILE:2: tls-min must be 1.2 or 1.3, got "1.1"`},
		{"a rule between keys", "reply = \"x\"\nidle-timeout = \"0s\"\n", `FILE:2: idle-timeout must be a positive duration, got 0s`},
		{"TOML syntax", "reply = \"x\"\nreply2 = \"unterminated\n", `FILE:2: basic strings cannot have new lines`},
		{"a key twice", "reply = \"x\"\nreply = \"y\"\n", `FILE:2: key reply is already defined`},
		{"the config key itself", "config = \"other.toml\"\n", `FILE:1: config cannot be set in a configuration file`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, "seclisten.toml", tt.text)
			cmd := seclistenCmd(t, "serve", "--addr", "127.0.0.1:0", "--config", f)
			out, err := cmd.CombinedOutput()
			want := "seclisten: " + strings.ReplaceAll(tt.want, "FILE", f) + "\n"
			if code := cmd.ProcessState.ExitCode(); code != exitUsage || string(out) != want {
				t.Errorf("exit %d (%v), output:\n%s\nwant exit 2 and:\n%s", code, err, out, want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		cmd := seclistenCmd(t, "serve", "--config", "/nonexistent/seclisten.toml")
		out, _ := cmd.CombinedOutput()
		want := "seclisten: read configuration file: open /nonexistent/seclisten.toml: no such file or directory\n"
		if code := cmd.ProcessState.ExitCode(); code != exitUsage || string(out) != want {
			t.Errorf("exit %d, output %q; want 2, %q", code, out, want)
		}
	})
}

// `check` prints one line per section, then its flag lines, and exits 0
// for a good setup.
func TestCheckGood(t *testing.T) {
	dir := pkiDir(t)
	f := writeFile(t, "seclisten.toml", fmt.Sprintf("cert = %q\nkey = %q\nclient-ca = [%q]\ncrl = %q\nallow-cn = [\"client\"]\n",
		filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "ca.pem"), filepath.Join(dir, "crl.pem")))
	cmd := seclistenCmd(t, "check", "--config", f, "--rate", "5")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	lines := splitLines(string(out))
	want := []string{
		`^config: ok \(` + regexp.QuoteMeta(f) + `, 5 keys set\)$`,
		`^certificate: ok \(CN=localhost, expires in 36[45] days, chain of 1\)$`,
		`^client CAs: ok \(1 CA, mode require\)$`,
		`^CRLs: ok \(1 CRL, next update in \d+ days\)$`,
		`^ACME: off$`,
		`^limits: rate 5/s burst 20, max-conns-per-ip 32, `,
	}
	for range serveCategories() {
		want = append(want, `^flags, [^:]+: `) // TestCheckFlags
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i+1, lines[i], re)
		}
	}
}

// `check` lists every problem it finds, across sections, and exits 1; an
// unknown flag stays a usage error.
func TestCheckProblems(t *testing.T) {
	dir := pkiDir(t)
	f := writeFile(t, "seclisten.toml", fmt.Sprintf("max-conns-per-ip = \"lots\"\nbogus = 1\ncert = %q\nkey = %q\nclient-ca = [%q]\n",
		filepath.Join(dir, "client-expired.pem"), filepath.Join(dir, "client-expired-key.pem"), filepath.Join(dir, "FILES.md")))
	cmd := seclistenCmd(t, "check", "--config", f, "--idle-timeout", "0")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitError {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"config: 3 problems\n",
		"  - " + f + ":2: unknown key \"bogus\" (the keys are the flags of seclisten serve --help)\n",
		"  - " + f + ":1: max-conns-per-ip: \"lots\" is not a whole number\n",
		"  - --idle-timeout must be a positive duration, got 0s\n",
		"certificate: 1 problem\n",
		"(CN=client-expired,O=seclisten development) expired ",
		"client CAs: 1 problem\n  - load client CA \"" + filepath.Join(dir, "FILES.md") + "\": no PEM certificate found\n",
		"ACME: off\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	cmd = seclistenCmd(t, "check", "--no-such-flag")
	out, _ = cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitUsage || string(out) != "seclisten: unknown flag --no-such-flag (see --help)\n" {
		t.Errorf("unknown flag: exit %d, %q", code, out)
	}
}

// sampleConfig is scripts/seclisten.toml: every key, commented out at its
// default, under its category, with its help text.
func sampleConfig() string {
	var b strings.Builder
	b.WriteString(`# seclisten configuration file (TOML): seclisten serve --config FILE.
#
# Every key is a flag of seclisten serve, without the dashes, and takes the
# same values (see seclisten serve --help). Each is shown here, commented
# out, at its default: uncomment and change what you need. Lists are TOML
# arrays, ["alice", "bob"], or one comma-separated string.
#
# Precedence: this file < the environment (SECLISTEN_<KEY>) < the command
# line. Check it before a reload:
#   seclisten check --config /etc/seclisten/seclisten.toml
# Reload it without dropping connections: systemctl reload seclisten
# (SIGHUP); a file with a problem keeps the policy in service.
#
# Generated from the flag definitions (go test ./cmd/seclisten -run
# TestSampleConfig -update); TestSampleConfig keeps it in sync.
`)
	cat := ""
	for _, f := range withEnvVars(serveFlags()) {
		name := f.Names()[0]
		if name == flagConfig {
			continue
		}
		if c := f.(cli.CategorizableFlag).GetCategory(); c != cat {
			cat = c
			fmt.Fprintf(&b, "\n# --- %s ---\n", cat)
		}
		usage := strings.ReplaceAll(f.(cli.DocGenerationFlag).GetUsage(), "`", "")
		b.WriteString("\n")
		for _, line := range wrap(usage, 74) {
			fmt.Fprintf(&b, "# %s\n", line)
		}
		if name == flagACMEStorage {
			b.WriteString("# (default: $XDG_DATA_HOME/seclisten/acme; the systemd unit sets /var/lib/seclisten/acme)\n")
			fmt.Fprintf(&b, "# %s = \"\"\n", name)
			continue
		}
		fmt.Fprintf(&b, "# %s = %s\n", name, sampleValue(f))
	}
	return b.String()
}

// sampleValue is a flag's default as the sample file writes it.
func sampleValue(f cli.Flag) string {
	switch f := f.(type) {
	case *cli.BoolFlag:
		return "false"
	case *cli.StringSliceFlag:
		return "[]"
	case *cli.StringFlag:
		if _, err := strconv.ParseInt(f.Value, 10, 64); err == nil {
			return f.Value
		}
		return strconv.Quote(f.Value)
	}
	panic("flag " + f.Names()[0] + ": no sample value")
}

// wrap breaks text into lines of at most width bytes, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// scripts/seclisten.toml is what the flags say: it parses once its keys
// are uncommented, holds every key, and each value is the flag's default.
func TestSampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "scripts", "seclisten.toml")
	want := sampleConfig()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != want {
		t.Fatalf("%s is out of date: run go test ./cmd/seclisten -run TestSampleConfig -update", path)
	}
	uncommented := regexp.MustCompile(`(?m)^# ([a-z0-9-]+ = )`).ReplaceAllString(string(data), "$1")
	flags := withEnvVars(serveFlags())
	file, err := parseConfigFile(path, []byte(uncommented), flags)
	if err != nil {
		t.Fatalf("the sample does not parse: %v", err)
	}
	for key, f := range fileKeys(flags) {
		v, ok := file.values[key]
		switch {
		case !ok:
			t.Errorf("key %s is missing", key)
		case key == flagACMEStorage:
		case !reflect.DeepEqual(strings.Join(v.strs, ","), fmt.Sprint(defaultOf(f))):
			t.Errorf("%s = %q, its default is %q", key, v.strs, defaultOf(f))
		}
	}
}

func defaultOf(f cli.Flag) string {
	switch f := f.(type) {
	case *cli.BoolFlag:
		return "false"
	case *cli.StringSliceFlag:
		return ""
	case *cli.StringFlag:
		return f.Value
	}
	return "?"
}

// Any file is an error or a set of keys, never a panic; each error is one
// line naming the file.
func FuzzParseConfigFile(f *testing.F) {
	for _, seed := range []string{
		"reply = \"x\"\nmax-conns-per-ip = 32\nallow-cn = [\"a\", \"b\"]\n",
		"deny-cidr = \"10.0.0.0/8,::1/128\"\nonce = true\nrate = 2.5\n",
		"[tls]\ncert = 1\n", "a.b.c = 1\n", "reply = [[1], {x = 2}]\n", "x = 1979-05-27T07:32:00Z\n",
		"reply = \"\"\"\nmulti\nline\"\"\"\n", "\"max-conns\" = \"3\"\n", "= 1\n",
	} {
		f.Add(seed)
	}
	flags := withEnvVars(serveFlags())
	f.Fuzz(func(t *testing.T, text string) {
		file, err := parseConfigFile("f.toml", []byte(text), flags)
		for _, e := range problems(err) {
			if msg := e.Error(); !strings.HasPrefix(msg, "f.toml") || strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line naming the file", msg)
			}
		}
		if file == nil {
			return
		}
		for key := range file.values {
			if _, ok := fileKeys(flags)[key]; !ok {
				t.Errorf("unknown key %q kept", key)
			}
		}
	})
}
