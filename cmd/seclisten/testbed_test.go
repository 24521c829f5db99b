package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests of `seclisten testbed`: the real binary, graded by
// the real clients users point at it (openssl s_client, curl), on loopback.

// testbedCases are the testbed's cases in port order, as the table lists them.
var testbedCases = []string{"good", "expired", "not-yet-valid", "wrong-host", "self-signed", "unknown-ca",
	"missing-intermediate", "wrong-eku", "weak-key", "tls10", "tls11", "slow-handshake",
	"abort-mid-handshake", "require-client-cert", "revoked"}

// tbRun is a running testbed.
type tbRun struct {
	*proc
	dir  string        // its working directory
	base int           // its --base-port
	out  *lockedBuffer // where its table and grades go (stderr with --json)
	cmds map[string]string
}

// launchTestbed runs `seclisten testbed` with args in dir, killed at the end
// of the test if still running.
func launchTestbed(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	cmd := osexec.Command(binary, append([]string{"testbed"}, args...)...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	p := startCmd(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testbed stdout:\n%s", tail(p.stdout.String(), 6000))
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// randomBase is a base port in 20000-32000: below Linux's ephemeral ports,
// so clients' own ports rarely take one, and random, so that test packages
// running at once rarely collide.
func randomBase() int { return 20000 + rand.IntN(12000) }

// busyPortError is the start-up error of a testbed that found a port taken.
const busyPortError = "cannot listen on port"

// startTestbed runs the testbed in dir on a random base port with args, and
// waits until it has printed its table. A base port another program holds
// part of is retried with another.
func startTestbed(t *testing.T, dir string, args ...string) *tbRun {
	t.Helper()
	for range 20 {
		base := randomBase()
		p := launchTestbed(t, dir, append([]string{"--base-port", strconv.Itoa(base)}, args...)...)
		out := p.stdout
		if slices.Contains(args, "--json") {
			out = p.stderr
		}
		p.await("the testbed's table", func() bool {
			return strings.Contains(out.String(), "\nGrading every connection") || p.exited()
		})
		if !strings.Contains(out.String(), "\nGrading every connection") {
			if p.cmd.ProcessState.ExitCode() == 2 && strings.Contains(p.stderr.String(), busyPortError) {
				t.Logf("base port %d busy, trying another: %s", base, strings.TrimSpace(p.stderr.String()))
				continue
			}
			t.Fatalf("testbed exited (%v) before printing its table; stderr:\n%s", p.err, p.stderr.String())
		}
		r := &tbRun{proc: p, dir: dir, base: base, out: out, cmds: map[string]string{}}
		r.parseTable()
		return r
	}
	t.Fatal("no free base port in 20 tries")
	return nil
}

// tableRow is a row of the table the testbed prints at start: PORT CASE
// EXPECTATION COMMAND.
var tableRow = regexp.MustCompile(`(?m)^(\d+)\s+(\S+)\s+.*?\s(echo hello \| .*)$`)

// parseTable reads the printed command of each case, and checks each is on
// the case's fixed port.
func (r *tbRun) parseTable() {
	r.t.Helper()
	offset := map[string]int{}
	for i, c := range testbedCases {
		offset[c] = i
	}
	for _, m := range tableRow.FindAllStringSubmatch(r.out.String(), -1) {
		port, _ := strconv.Atoi(m[1])
		name := m[2]
		off, ok := offset[name]
		if !ok {
			r.t.Fatalf("table row for unknown case %q: %q", name, m[0])
		}
		if port != r.base+off {
			r.t.Fatalf("case %s on port %d, want %d (base %d + offset %d)", name, port, r.base+off, r.base, off)
		}
		if !strings.Contains(m[3], "127.0.0.1:"+m[1]) {
			r.t.Fatalf("command of %s does not connect to its port %s: %q", name, m[1], m[3])
		}
		r.cmds[name] = m[3]
	}
	if len(r.cmds) == 0 {
		r.t.Fatalf("no command in the table:\n%s", r.out.String())
	}
}

// port is case name's port.
func (r *tbRun) port(name string) int { return r.base + slices.Index(testbedCases, name) }

// gradeLine is a parsed `[testbed] CASE: CLIENT RESULT EVIDENCE` line.
type gradeLine struct {
	client, result, evidence string
}

// grades are the grade lines printed so far for case name.
func (r *tbRun) grades(name string) []gradeLine {
	var out []gradeLine
	prefix := "[testbed] " + name + ": "
	for _, l := range splitLines(r.out.String()) {
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok {
			continue
		}
		f := strings.SplitN(rest, " ", 3)
		if len(f) < 3 {
			r.t.Fatalf("malformed grade line %q", l)
		}
		out = append(out, gradeLine{f[0], f[1], f[2]})
	}
	return out
}

// waitGrade waits for the n-th grade line of case name and returns it.
func (r *tbRun) waitGrade(name string, n int) gradeLine {
	r.t.Helper()
	r.await("grade line "+strconv.Itoa(n)+" of case "+name, func() bool { return len(r.grades(name)) >= n })
	g := r.grades(name)[n-1]
	if !strings.HasPrefix(g.client, "127.0.0.1:") {
		r.t.Errorf("grade of %s: client %q, want 127.0.0.1:PORT", name, g.client)
	}
	return g
}

// waitExit waits for the testbed to exit by itself and returns its status.
func (r *tbRun) waitExit() int {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(hangGuard):
		r.t.Fatalf("testbed did not exit within %s", hangGuard)
	}
	return r.cmd.ProcessState.ExitCode()
}

// cardRow is a row of the report card table.
type cardRow struct {
	result      string
	connections int
	evidence    string
}

// card parses the report card the testbed printed on stdout at its exit:
// the rows by case, and the total line.
func (r *tbRun) card() (map[string]cardRow, string) {
	r.t.Helper()
	out := r.stdout.String()
	i := strings.Index(out, "\nCASE ")
	if i < 0 {
		r.t.Fatalf("no report card on stdout:\n%s", out)
	}
	lines := splitLines(out[i+1:])
	rows := map[string]cardRow{}
	for _, l := range lines[1 : len(lines)-1] {
		f := strings.Fields(l)
		if len(f) < 3 {
			r.t.Fatalf("malformed card row %q", l)
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			r.t.Fatalf("card row %q: connections %q", l, f[2])
		}
		rows[f[0]] = cardRow{f[1], n, strings.Join(f[3:], " ")}
	}
	return rows, lines[len(lines)-1]
}

// shell runs a command line as a user pastes it, in dir, and returns its exit
// status and output. The hang guard kills its whole process group.
func shell(t testing.TB, dir, line string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := osexec.CommandContext(ctx, "bash", "-c", line)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s: still running after %s", line, hangGuard)
	}
	var ee *osexec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", line, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// runCase runs the command line of case name (rewritten by edit), waits for
// its grade line, and returns it.
func (r *tbRun) runCase(name string, edit func(string) string) gradeLine {
	r.t.Helper()
	line, ok := r.cmds[name]
	if !ok {
		r.t.Fatalf("no command for case %s in the table", name)
	}
	if edit != nil {
		line = edit(line)
	}
	n := len(r.grades(name)) + 1
	code, _, _ := shell(r.t, r.dir, line)
	g := r.waitGrade(name, n)
	r.t.Logf("%s (exit %d): %s %s", line, code, g.result, g.evidence)
	return g
}

// fasterTimeout turns the slow-handshake command's timeout of 5 s into 2 s:
// any client timeout under --slow-for passes.
func fasterTimeout(line string) string { return strings.Replace(line, "timeout 5 ", "timeout 2 ", 1) }

func noVerify(line string) string {
	return fasterTimeout(strings.Replace(line, " -verify_return_error", "", 1))
}

// TestTestbedOpenSSL runs every case's printed openssl command.
func TestTestbedOpenSSL(t *testing.T) {
	t.Run("verify", func(t *testing.T) {
		t.Parallel()
		r := startTestbed(t, t.TempDir(), "--slow-for", "30s")
		if len(r.cmds) != len(testbedCases) {
			t.Fatalf("table has %d commands, want %d", len(r.cmds), len(testbedCases))
		}
		if !strings.Contains(r.cmds["slow-handshake"], "timeout 5 openssl") {
			t.Errorf("slow-handshake command %q has no timeout 5", r.cmds["slow-handshake"])
		}
		for _, name := range testbedCases {
			if g := r.runCase(name, fasterTimeout); g.result != "PASS" {
				t.Errorf("%s: graded %s %s, want PASS", name, g.result, g.evidence)
			}
		}
		if code, _ := r.signal(syscall.SIGINT, hangGuard); code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		rows, total := r.card()
		for _, name := range testbedCases {
			if row := rows[name]; row.result != "PASS" || row.connections != 1 {
				t.Errorf("card row %s = %+v, want PASS with 1 connection", name, row)
			}
		}
		if total != "15 PASS: no case failed" {
			t.Errorf("card total %q", total)
		}
	})
	t.Run("no-verify", func(t *testing.T) {
		t.Parallel()
		r := startTestbed(t, t.TempDir(), "--slow-for", "30s")
		fail := []string{"expired", "not-yet-valid", "wrong-host", "self-signed", "unknown-ca",
			"missing-intermediate", "wrong-eku", "weak-key", "revoked"}
		want := func(name string) string {
			if slices.Contains(fail, name) {
				return "FAIL"
			}
			return "PASS"
		}
		for _, name := range testbedCases {
			g := r.runCase(name, noVerify)
			if g.result != want(name) {
				t.Errorf("%s: graded %s %s, want %s", name, g.result, g.evidence, want(name))
			}
			if g.result == "FAIL" && !strings.Contains(g.evidence, "then it sent data") {
				t.Errorf("%s: evidence %q does not say the client sent data", name, g.evidence)
			}
		}
		if g := r.grades("revoked"); len(g) > 0 && !strings.Contains(g[0].evidence, "fetched the CRL") {
			t.Errorf("revoked: evidence %q does not say the client fetched the CRL", g[0].evidence)
		}
		if code, _ := r.signal(syscall.SIGINT, hangGuard); code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		rows, total := r.card()
		for _, name := range testbedCases {
			if row := rows[name]; row.result != want(name) || row.connections != 1 {
				t.Errorf("card row %s = %+v, want %s with 1 connection", name, row, want(name))
			}
		}
		if total != "6 PASS, 9 FAIL: a case failed" {
			t.Errorf("card total %q", total)
		}
	})
}

// TestTestbedCurl points curl at the good and the wrong-host cases.
func TestTestbedCurl(t *testing.T) {
	r := startTestbed(t, t.TempDir(), "--cases", "good,wrong-host")
	curl := func(name string, args ...string) (int, string, gradeLine) {
		t.Helper()
		line := "curl -sS -4 " + strings.Join(args, " ") + " https://localhost:" + strconv.Itoa(r.port(name)) + "/"
		n := len(r.grades(name)) + 1
		code, out, errOut := shell(t, r.dir, line)
		g := r.waitGrade(name, n)
		t.Logf("%s: exit %d, stdout %q, stderr %q; graded %s %s", line, code, out, errOut, g.result, g.evidence)
		return code, out, g
	}

	code, out, g := curl("good", "--cacert", "certs/testbed/ca.pem")
	if code != 0 || g.result != "PASS" {
		t.Errorf("curl good: exit %d, graded %s, want 0 and PASS", code, g.result)
	}
	if want := "seclisten testbed, case good: PASS: " + g.evidence + "\n"; out != want {
		t.Errorf("curl good printed %q, want %q", out, want)
	}

	code, out, g = curl("wrong-host", "--cacert", "certs/testbed/ca.pem")
	if code != 60 || out != "" {
		t.Errorf("curl wrong-host: exit %d, stdout %q; want exit 60 and nothing", code, out)
	}
	if g.result != "PASS" || !strings.Contains(g.evidence, "closed without sending anything") {
		t.Errorf("curl wrong-host graded %s %s, want PASS: closed without sending anything", g.result, g.evidence)
	}

	code, out, g = curl("wrong-host", "-k")
	if code != 0 || g.result != "FAIL" || !strings.Contains(g.evidence, "other.test") {
		t.Errorf("curl -k wrong-host: exit %d, graded %s %s; want 0, FAIL for other.test", code, g.result, g.evidence)
	}
	if want := "seclisten testbed, case wrong-host: FAIL: " + g.evidence + "\n"; out != want {
		t.Errorf("curl -k wrong-host printed %q, want %q", out, want)
	}

	if code, _ := r.signal(syscall.SIGINT, hangGuard); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	rows, total := r.card()
	if row := rows["good"]; row.result != "PASS" || row.connections != 1 {
		t.Errorf("card row good = %+v, want PASS, 1 connection", row)
	}
	if row := rows["wrong-host"]; row.result != "FAIL" || row.connections != 2 || !strings.Contains(row.evidence, "then it sent data") {
		t.Errorf("card row wrong-host = %+v, want FAIL (the curl -k), 2 connections", row)
	}
	if len(rows) != 2 || total != "1 PASS, 1 FAIL: a case failed" {
		t.Errorf("card has %d rows, total %q", len(rows), total)
	}
}

// tbReport is the JSON report card, version 1.
type tbReport struct {
	Version int       `json:"version"`
	Passed  bool      `json:"passed"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Totals  struct {
		Pass       int `json:"pass"`
		Fail       int `json:"fail"`
		NotChecked int `json:"not-checked"`
		NotTried   int `json:"not-tried"`
	} `json:"totals"`
	Cases []struct {
		Case        string `json:"case"`
		Port        int    `json:"port"`
		Expect      string `json:"expect"`
		Result      string `json:"result"`
		Evidence    string `json:"evidence"`
		Connections int    `json:"connections"`
		Pass        int    `json:"pass"`
		Fail        int    `json:"fail"`
		NotChecked  int    `json:"not_checked"`
	} `json:"cases"`
	Connections []struct {
		Case     string    `json:"case"`
		Client   string    `json:"client"`
		Time     time.Time `json:"time"`
		Result   string    `json:"result"`
		Evidence string    `json:"evidence"`
	} `json:"connections"`
	ConnectionsDropped int `json:"connections_dropped"`
	NotGraded          int `json:"not_graded"`
}

// TestTestbedJSON checks the JSON report card: stdout is the card alone.
func TestTestbedJSON(t *testing.T) {
	r := startTestbed(t, t.TempDir(), "--json", "--cases", "good,expired")
	if r.stdout.String() != "" {
		t.Fatalf("stdout before the card: %q", r.stdout.String())
	}
	if len(r.cmds) != 2 {
		t.Fatalf("table on stderr has %d commands, want 2", len(r.cmds))
	}
	g := r.runCase("good", nil)
	if g.result != "PASS" {
		t.Errorf("good graded %s %s, want PASS", g.result, g.evidence)
	}
	if code, _ := r.signal(syscall.SIGINT, hangGuard); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	out := r.stdout.String()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var rep tbReport
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not the JSON card: %v\n%s", err, out)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON document (%v): %s", err, out)
	}
	if rep.Version != 1 || !rep.Passed {
		t.Errorf("version %d, passed %v; want 1, true", rep.Version, rep.Passed)
	}
	if rep.Started.IsZero() || rep.Ended.Before(rep.Started) {
		t.Errorf("started %v, ended %v", rep.Started, rep.Ended)
	}
	tot := rep.Totals
	if tot.Pass+tot.Fail+tot.NotChecked+tot.NotTried != len(rep.Cases) || len(rep.Cases) != 2 ||
		tot.Pass != 1 || tot.NotTried != 1 {
		t.Errorf("totals %+v for %d cases, want 1 pass, 1 not-tried of 2", tot, len(rep.Cases))
	}
	if len(rep.Cases) == 2 {
		good, exp := rep.Cases[0], rep.Cases[1]
		if good.Case != "good" || good.Port != r.port("good") || good.Expect != "connects" || good.Result != "pass" ||
			good.Evidence != g.evidence || good.Connections != 1 || good.Pass != 1 || good.Fail != 0 || good.NotChecked != 0 {
			t.Errorf("cases[0] = %+v", good)
		}
		if exp.Case != "expired" || exp.Port != r.port("expired") || exp.Expect != "refuses" || exp.Result != "not-tried" ||
			exp.Connections != 0 {
			t.Errorf("cases[1] = %+v", exp)
		}
	}
	if len(rep.Connections) != 1 {
		t.Fatalf("connections = %+v, want one", rep.Connections)
	}
	c := rep.Connections[0]
	if c.Case != "good" || c.Client != g.client || c.Result != "pass" || c.Evidence != g.evidence ||
		c.Time.Before(rep.Started) || c.Time.After(rep.Ended) {
		t.Errorf("connections[0] = %+v, want the grade line %+v", c, g)
	}
	if rep.ConnectionsDropped != 0 || rep.NotGraded != 0 {
		t.Errorf("connections_dropped %d, not_graded %d; want 0", rep.ConnectionsDropped, rep.NotGraded)
	}
}

// TestTestbedStopsItself checks --exit-after and --duration end the run
// without a signal.
func TestTestbedStopsItself(t *testing.T) {
	t.Run("exit-after", func(t *testing.T) {
		t.Parallel()
		r := startTestbed(t, t.TempDir(), "--exit-after", "2", "--cases", "good,expired")
		r.runCase("good", nil)
		r.runCase("expired", nil)
		if code := r.waitExit(); code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		rows, total := r.card()
		if rows["good"].result != "PASS" || rows["expired"].result != "PASS" || total != "2 PASS: no case failed" {
			t.Errorf("card %+v, total %q", rows, total)
		}
	})
	t.Run("duration", func(t *testing.T) {
		t.Parallel()
		r := startTestbed(t, t.TempDir(), "--duration", "1s")
		if !strings.Contains(r.stdout.String(), "the end of --duration 1s (or Ctrl-C) prints the report card") {
			t.Errorf("table does not say when the run ends:\n%s", r.stdout.String())
		}
		if code := r.waitExit(); code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		rows, total := r.card()
		for _, name := range testbedCases {
			want := cardRow{"NOT-TRIED", 0, "no client was graded on port " + strconv.Itoa(r.port(name))}
			if rows[name] != want {
				t.Errorf("card row %s = %+v, want %+v", name, rows[name], want)
			}
		}
		if total != "15 NOT-TRIED: no case failed" {
			t.Errorf("card total %q", total)
		}
	})
}

// runTestbedOnce runs a testbed that is expected to exit at once, and
// returns its status, stdout and stderr.
func runTestbedOnce(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	p := launchTestbed(t, dir, args...)
	select {
	case <-p.done:
	case <-time.After(hangGuard):
		t.Fatalf("testbed %q still running after %s", args, hangGuard)
	}
	return p.cmd.ProcessState.ExitCode(), p.stdout.String(), p.stderr.String()
}

// TestTestbedBadInput checks each bad input is one clear sentence and exit 2.
func TestTestbedBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown-case", []string{"--cases", "nope"}, append([]string{`invalid --cases: unknown case "nope"`}, testbedCases...)},
		{"empty-cases", []string{"--cases", ","}, []string{`invalid --cases ",": name at least one case`}},
		{"base-port-0", []string{"--base-port", "0"}, []string{"invalid --base-port 0", "65520"}},
		{"base-port-too-high", []string{"--base-port", "65530"}, []string{"invalid --base-port 65530", "65520"}},
		{"addr", []string{"--addr", "not-an-ip"}, []string{`invalid --addr "not-an-ip"`, "IP address"}},
		{"cert-without-key", []string{"--client-cert", "client.pem"}, []string{"--client-cert and --client-key go together"}},
		{"cert-missing", []string{"--client-cert", "nope.pem", "--client-key", "nope-key.pem"},
			[]string{"invalid --client-cert/--client-key", "nope.pem", "no such file"}},
		{"duration", []string{"--duration", "bogus"}, []string{`invalid --duration "bogus"`}},
		{"slow-for", []string{"--slow-for", "0"}, []string{`invalid --slow-for "0"`}},
		{"argument", []string{"extra"}, []string{`testbed takes no arguments, got "extra"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--base-port", strconv.Itoa(randomBase())}, tc.args...)
			code, out, errOut := runTestbedOnce(t, t.TempDir(), args...)
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			lines := splitLines(errOut)
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "seclisten: ") {
				t.Errorf("stderr %q, want one line `seclisten: ...`", errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
			if strings.Contains(errOut, "panic") || strings.Contains(errOut, "goroutine") {
				t.Errorf("stderr has a panic: %s", errOut)
			}
		})
	}
	t.Run("busy-port", func(t *testing.T) {
		t.Parallel()
		for range 20 {
			base := randomBase()
			busy := base + 3
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(busy))
			if err != nil {
				continue
			}
			code, out, errOut := runTestbedOnce(t, t.TempDir(), "--base-port", strconv.Itoa(base))
			ln.Close()
			if code == 2 && !strings.Contains(errOut, "port "+strconv.Itoa(busy)+" ") && strings.Contains(errOut, busyPortError) {
				t.Logf("another port of base %d busy too, trying another: %s", base, errOut)
				continue
			}
			if code != 2 || out != "" {
				t.Fatalf("exit status %d, stdout %q; want 2 and nothing", code, out)
			}
			lines := splitLines(errOut)
			want := "seclisten: cannot listen on port " + strconv.Itoa(busy) + " for case wrong-host: "
			if len(lines) != 2 || !strings.HasPrefix(lines[0], want) || !strings.HasPrefix(lines[1], "seclisten: hint: ") {
				t.Errorf("stderr %q, want %q... then a hint line", errOut, want)
			}
			return
		}
		t.Fatal("no free base port in 20 tries")
	})
	t.Run("foreign-ca", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if out, err := seclistenCmdIn(t, dir, "certs", "init", "--dir", "mine").CombinedOutput(); err != nil {
			t.Fatalf("certs init: %v\n%s", err, out)
		}
		before, _ := os.ReadFile(filepath.Join(dir, "mine", "ca.pem"))
		code, out, errOut := runTestbedOnce(t, dir, "--dir", "mine", "--base-port", strconv.Itoa(randomBase()))
		// 2, as for any testbed that could not start: 1 is a failed case.
		if code != 2 || out != "" {
			t.Errorf("exit status %d, stdout %q; want 2 and nothing", code, out)
		}
		if lines := splitLines(errOut); len(lines) != 1 || !strings.Contains(errOut, "not the testbed's own CA") ||
			!strings.Contains(errOut, filepath.Join("mine", "ca.pem")) {
			t.Errorf("stderr %q, want one line saying mine/ca.pem is not the testbed's own CA", errOut)
		}
		if after, _ := os.ReadFile(filepath.Join(dir, "mine", "ca.pem")); !bytes.Equal(before, after) {
			t.Error("the testbed changed the foreign ca.pem")
		}
	})
}

// seclistenCmdIn is seclistenCmd run in dir.
func seclistenCmdIn(t *testing.T, dir string, args ...string) *osexec.Cmd {
	t.Helper()
	cmd := seclistenCmd(t, args...)
	cmd.Dir = dir
	return cmd
}

// TestTestbedKeepsCA runs the testbed twice on one directory.
func TestTestbedKeepsCA(t *testing.T) {
	dir := t.TempDir()
	run := func() []byte {
		t.Helper()
		r := startTestbed(t, dir, "--cases", "good")
		if code, _ := r.signal(syscall.SIGINT, hangGuard); code != 0 {
			t.Fatalf("exit status %d, want 0", code)
		}
		ca, err := os.ReadFile(filepath.Join(dir, "certs", "testbed", "ca.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
	first := run()
	second := run()
	if !bytes.Equal(first, second) {
		t.Error("the second run replaced certs/testbed/ca.pem")
	}
	readme, err := os.ReadFile(filepath.Join(dir, "certs", "testbed", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range testbedCases {
		if !strings.Contains(string(readme), name) {
			t.Errorf("certs/testbed/README.md does not mention case %s", name)
		}
	}
}

// TestTestbedClientCert grades openssl on require-client-cert.
func TestTestbedClientCert(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		r := startTestbed(t, t.TempDir(), "--cases", "require-client-cert")
		g := r.runCase("require-client-cert", func(l string) string {
			return strings.Replace(l, " -cert certs/testbed/client.pem -key certs/testbed/client-key.pem", "", 1)
		})
		if g.result != "FAIL" || !strings.Contains(g.evidence, "sent no certificate") {
			t.Errorf("graded %s %s, want FAIL: sent no certificate", g.result, g.evidence)
		}
		if code, _ := r.signal(syscall.SIGINT, hangGuard); code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		rows, _ := r.card()
		if row := rows["require-client-cert"]; row.result != "FAIL" || !strings.Contains(row.evidence, "sent no certificate") {
			t.Errorf("card row %+v, want FAIL: sent no certificate", row)
		}
	})
	t.Run("own", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if out, err := seclistenCmdIn(t, dir, "certs", "init", "--dir", "certs").CombinedOutput(); err != nil {
			t.Fatalf("certs init: %v\n%s", err, out)
		}
		r := startTestbed(t, dir, "--cases", "require-client-cert",
			"--client-cert", "certs/client.pem", "--client-key", "certs/client-key.pem")
		if l := r.cmds["require-client-cert"]; !strings.Contains(l, " -cert certs/client.pem -key certs/client-key.pem") {
			t.Errorf("command %q does not present certs/client.pem", l)
		}
		g := r.runCase("require-client-cert", nil)
		if g.result != "PASS" || !strings.Contains(g.evidence, "client presented") {
			t.Errorf("graded %s %s, want PASS: client presented ...", g.result, g.evidence)
		}
		if code, _ := r.signal(syscall.SIGINT, hangGuard); code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		rows, total := r.card()
		if rows["require-client-cert"].result != "PASS" || total != "1 PASS: no case failed" {
			t.Errorf("card %+v, total %q", rows, total)
		}
	})
}
