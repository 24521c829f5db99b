package main

import (
	"bytes"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The systemd unit, its environment file and `make install` are tested here:
// the files land where the README says with the right modes, an operator's
// configuration is never overwritten, and the unit's sandbox does not
// loosen (systemd-analyze security) or stop parsing (systemd-analyze verify).

const (
	unitFile   = "scripts/seclisten.service"
	socketFile = "scripts/seclisten.socket"
	envFile    = "scripts/seclisten.env"
	// installedBin is the ExecStart= path in scripts/seclisten.service;
	// `make install PREFIX=...` rewrites it.
	installedBin = "/usr/local/bin/seclisten"

	// maxExposure is the overall exposure level systemd-analyze security
	// (systemd 252) gives scripts/seclisten.service. Lower it when the unit
	// gets tighter; never raise it to make this test pass.
	maxExposure = 1.2
)

// notHardened are the only checks of systemd-analyze security the unit may
// fail, each with the reason it must. Anything else failing is a regression,
// even when the rounded score does not move.
var notHardened = map[string]string{
	"PrivateNetwork=":                          "serving clients and reaching the ACME CA need the host's network",
	"RestrictAddressFamilies=~AF_(INET|INET6)": "TCP and UDP over IPv4/IPv6 are the program's purpose (listener, ACME, DNS)",
	"IPAddressDeny=":                           "a public endpoint serves any address and reaches the CA wherever it is",
	"PrivateUsers=":                            "without seclisten.socket, the documented drop-in's CAP_NET_BIND_SERVICE in a private user namespace could not bind :443 in the host's network namespace (EACCES)",
	"RestrictAddressFamilies=~AF_UNIX":         "sd_notify (READY=1, WATCHDOG=1, STATUS=) is a datagram to systemd's unix socket",
	"DeviceAllow=":                             "ProtectClock=yes implies read access to the RTC (char-rtc r)",
	"RootDirectory=/RootImage=":                "a private root would have to rebuild /usr, CA roots and resolv.conf; no change in the score",
	"ProcSubset=":                              "hiding /proc/sys would shrink Go's listen backlog from somaxconn (4096) to 128",
}

// repoRoot is the module root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", wd, err)
	}
	return root
}

// lookTool finds a program the test needs, from the Debian package pkg; a
// missing one fails the test (never a silent skip).
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := osexec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed for this test (make test installs Debian's %s): %v", name, pkg, err)
	}
	return p
}

// makeEnv is the environment for a nested make: without the settings of an
// outer make (`make test` runs this test) or of the caller's shell that would
// redirect the install.
func makeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "GNUMAKEFLAGS", "MAKEFILES",
			"DESTDIR", "PREFIX", "UNITDIR", "INSTALL":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// runMake runs make in the repository with args and returns its output.
func runMake(t *testing.T, root string, args ...string) string {
	t.Helper()
	cmd := osexec.Command(lookTool(t, "make", "make"), append([]string{"-C", root, "--no-print-directory"}, args...)...)
	cmd.Env = makeEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// checkFile fails unless path is a regular file with mode perm, and, when
// want is not nil, exactly the bytes of want.
func checkFile(t *testing.T, path string, perm os.FileMode, want []byte) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Errorf("not installed: %v", err)
		return
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("%s: not a regular file (%v)", path, fi.Mode())
	}
	if got := fi.Mode().Perm(); got != perm {
		t.Errorf("%s: mode %04o, want %04o", path, got, perm)
	}
	if want != nil {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs from its source", path)
		}
	}
}

func TestInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with make; not a unit test")
	}
	root := repoRoot(t)
	read := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	unit, env, socket, conf := read(unitFile), read(envFile), read(socketFile), read("scripts/seclisten.toml")

	dest := t.TempDir()
	bin := filepath.Join(dest, "usr/local/bin/seclisten")
	unitPath := filepath.Join(dest, "etc/systemd/system/seclisten.service")
	socketPath := filepath.Join(dest, "etc/systemd/system/seclisten.socket")
	envPath := filepath.Join(dest, "etc/seclisten/seclisten.env")
	confPath := filepath.Join(dest, "etc/seclisten/seclisten.toml")

	out := runMake(t, root, "install", "DESTDIR="+dest, "PREFIX=/usr/local")
	checkFile(t, bin, 0o755, read("bin/seclisten"))
	checkFile(t, unitPath, 0o644, unit)
	checkFile(t, socketPath, 0o644, socket)
	checkFile(t, envPath, 0o640, env)
	checkFile(t, confPath, 0o644, conf)
	for _, next := range []string{"/etc/seclisten/seclisten.env", "check --config /etc/seclisten/seclisten.toml", "systemctl daemon-reload", "systemctl enable --now seclisten.socket seclisten"} {
		if !strings.Contains(out, next) {
			t.Errorf("make install does not tell what to do next (%q):\n%s", next, out)
		}
	}
	if v, err := osexec.Command(bin, "version").CombinedOutput(); err != nil {
		t.Errorf("installed binary does not run: %v\n%s", err, v)
	}

	// An operator's edits survive a second install (an upgrade); the unit
	// is replaced by the new one.
	edited := []byte("# mine\nSECLISTEN_ADDR=:8443\n")
	if err := os.WriteFile(envPath, edited, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unitPath, []byte("[Service]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	editedConf := []byte("# mine\nreply = \"ok\"\n")
	if err := os.WriteFile(confPath, editedConf, 0o644); err != nil {
		t.Fatal(err)
	}
	out = runMake(t, root, "install", "DESTDIR="+dest, "PREFIX=/usr/local")
	checkFile(t, envPath, 0o640, edited)
	checkFile(t, confPath, 0o644, editedConf)
	checkFile(t, unitPath, 0o644, unit)
	if !strings.Contains(out, "kept") {
		t.Errorf("second install does not say it kept the environment file:\n%s", out)
	}

	// uninstall removes the binary and the unit, keeps the configuration.
	runMake(t, root, "uninstall", "DESTDIR="+dest, "PREFIX=/usr/local")
	for _, gone := range []string{bin, unitPath, socketPath} {
		if _, err := os.Lstat(gone); !os.IsNotExist(err) {
			t.Errorf("%s still there after uninstall (%v)", gone, err)
		}
	}
	checkFile(t, envPath, 0o640, edited)

	t.Run("PREFIX", func(t *testing.T) {
		dest := t.TempDir()
		runMake(t, root, "install", "DESTDIR="+dest, "PREFIX=/usr")
		checkFile(t, filepath.Join(dest, "usr/bin/seclisten"), 0o755, nil)
		got, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system/seclisten.service"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(got), "\nExecStart=/usr/bin/seclisten serve --config /etc/seclisten/seclisten.toml\n") || strings.Contains(string(got), installedBin) {
			t.Errorf("unit installed with PREFIX=/usr still runs %s", installedBin)
		}
	})
}

// exposureRE matches systemd-analyze security's summary line, in UTF-8
// ("→ … 1.4 OK 🙂") and ASCII locales ("-> … 1.4 OK :-)").
var exposureRE = regexp.MustCompile(`Overall exposure level for seclisten\.service: ([0-9]+(?:\.[0-9]+)?)`)

func TestUnitSecurityScore(t *testing.T) {
	sa := lookTool(t, "systemd-analyze", "systemd")
	unit := filepath.Join(repoRoot(t), unitFile)

	out, err := osexec.Command(sa, "security", "--offline=yes", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("overall exposure level: %.1f (at most %.1f)", score, maxExposure)
	if score > maxExposure {
		t.Errorf("exposure level %.1f, want at most %.1f:\n%s", score, maxExposure, out)
	}

	// Each check the unit fails must be one of the unavoidable ones.
	js, err := osexec.Command(sa, "security", "--offline=yes", "--no-pager", "--json=short", unit).Output()
	if err != nil {
		t.Fatalf("systemd-analyze security --json=short: %v", err)
	}
	var checks []struct {
		Set         bool    `json:"set"`
		Name        string  `json:"name"`
		Description string  `json:"description"`
		Exposure    *string `json:"exposure"`
	}
	if err := json.Unmarshal(js, &checks); err != nil {
		t.Fatalf("systemd-analyze security --json=short: %v\n%s", err, js)
	}
	if len(checks) == 0 {
		t.Fatal("systemd-analyze security --json=short listed no checks")
	}
	for _, c := range checks {
		if c.Set {
			continue
		}
		exposure := "?"
		if c.Exposure != nil {
			exposure = *c.Exposure
		}
		if why, ok := notHardened[c.Name]; ok {
			t.Logf("not hardened: %s (%s): %s", c.Name, exposure, why)
			continue
		}
		t.Errorf("%s is not hardened any more (exposure %s): %s", c.Name, exposure, c.Description)
	}
}

func TestUnitVerify(t *testing.T) {
	sa := lookTool(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile(filepath.Join(repoRoot(t), unitFile))
	if err != nil {
		t.Fatal(err)
	}
	socket, err := os.ReadFile(filepath.Join(repoRoot(t), socketFile))
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart= is executable: point it at the binary
	// TestMain built, the same substitution `make install PREFIX=` makes.
	// The socket is verified beside the service it activates.
	dir := t.TempDir()
	path := filepath.Join(dir, "seclisten.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte(installedBin), []byte(binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	socketPath := filepath.Join(dir, "seclisten.socket")
	if err := os.WriteFile(socketPath, socket, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := osexec.Command(sa, "verify", "--man=no", socketPath, path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// verify exits 0 on unknown or unparsable directives: it only warns. Any
	// line about this unit is a mistake in it; others come from the host's
	// units and are only logged.
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case line == "":
		case strings.Contains(line, "seclisten"):
			t.Errorf("systemd-analyze verify: %s", line)
		default:
			t.Logf("systemd-analyze verify (not about seclisten): %s", line)
		}
	}
}
