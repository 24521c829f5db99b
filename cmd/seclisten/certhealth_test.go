package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/pki"
)

// The log messages of the server certificate's health (pkg/server).
const (
	msgCertExpired    = "server certificate expired: clients refuse it"
	msgCertNotYet     = "server certificate not valid yet: clients refuse it"
	msgCertExpiring   = "server certificate expires soon"
	msgCertValidAgain = "server certificates valid again: ready"
)

// writeServerCert writes a server certificate for localhost with the given
// validity, signed by a CA of its own, to dir/server.pem and
// dir/server-key.pem (over what is there), and returns the two paths.
func writeServerCert(t *testing.T, dir string, v pki.Validity) (cert, key string) {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{Validity: pki.Validity{NotBefore: time.Now().AddDate(0, 0, -60)}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.IssueServer(pki.ServerOptions{Hosts: []string{"localhost"}, Validity: v})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := c.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if err := os.WriteFile(cert, c.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// readyz is /readyz's status and body.
func readyz(t *testing.T, maddr string) (int, string) {
	t.Helper()
	return curl(t, "http://"+maddr+"/readyz")
}

// An expired or not-yet-valid --cert in service: an error in the log and
// /readyz 503 with the reason; a reload with a valid one makes it 200 again,
// and says so.
func TestServerCertOutsideValidity(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name     string
		validity pki.Validity
		msg      string
		reason   string
	}{
		{"expired", pki.Validity{NotBefore: now.AddDate(0, 0, -30), NotAfter: now.AddDate(0, 0, -3)},
			msgCertExpired, "not ready: the certificate of CN=localhost expired at "},
		{"not yet valid", pki.Validity{NotBefore: now.AddDate(0, 0, 2), NotAfter: now.AddDate(0, 0, 90)},
			msgCertNotYet, "not ready: the certificate of CN=localhost is not valid until "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cert, key := writeServerCert(t, dir, tt.validity)
			maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			p := startServe(t, "--cert", cert, "--key", key, "--metrics-addr", maddr)
			rec := p.waitLog(tt.msg, 1)
			if rec["level"] != "ERROR" || rec["cert_name"] != "CN=localhost" || rec["source"] != "file" ||
				rec["cert_not_after"] == nil {
				t.Errorf("error record %v", rec)
			}
			if code, body := readyz(t, maddr); code != 503 || !strings.HasPrefix(body, tt.reason) {
				t.Errorf("/readyz = %d %q, want 503 %q...", code, body, tt.reason)
			}

			writeServerCert(t, dir, pki.Validity{})
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			p.waitLog(msgCertValidAgain, 1)
			if code, body := readyz(t, maddr); code != 200 || body != "ready" {
				t.Errorf("/readyz = %d %q after a reload with a valid certificate", code, body)
			}
			if n := len(p.logRecords(tt.msg)); n != 1 {
				t.Errorf("%d error records, want 1", n)
			}
			p.stop()
		})
	}
}

// Readiness follows the certificate's validity window on time, with no
// traffic and no reload: a certificate that expires while served turns
// /readyz to 503 at its NotAfter, one that becomes valid turns it to 200.
// (Their bounds are 5 to 6 s away, x509 times being whole seconds: far
// more than a start takes, and only waited for through the log.)
func TestServerCertValidityFlipsOnTime(t *testing.T) {
	// Mostly waiting on certificates, CRLs and bans to expire: beside the others.
	t.Parallel()
	t.Run("expires", func(t *testing.T) {
		dir := t.TempDir()
		cert, key := writeServerCert(t, dir, pki.Validity{NotAfter: time.Now().Add(6 * time.Second)})
		maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p := startServe(t, "--cert", cert, "--key", key, "--metrics-addr", maddr)
		if code, _ := readyz(t, maddr); code != 200 && p.logRecord(msgCertExpired) == nil {
			t.Errorf("/readyz = %d with a valid certificate", code)
		}
		rec := p.waitLog(msgCertExpired, 1)
		if code, body := readyz(t, maddr); code != 503 || !strings.Contains(body, "expired at") {
			t.Errorf("/readyz = %d %q after %v", code, body, rec)
		}
		p.stop()
	})
	t.Run("becomes valid", func(t *testing.T) {
		dir := t.TempDir()
		cert, key := writeServerCert(t, dir, pki.Validity{NotBefore: time.Now().Add(6 * time.Second), Days: 30})
		maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p := startServe(t, "--cert", cert, "--key", key, "--metrics-addr", maddr)
		p.waitLog(msgCertNotYet, 1)
		p.waitLog(msgCertValidAgain, 1)
		if code, body := readyz(t, maddr); code != 200 {
			t.Errorf("/readyz = %d %q once valid", code, body)
		}
		p.stop()
	})
}

// A --cert within --cert-warn of its expiry is warned of at start, naming
// it, its expiry and the days left; with --cert-warn 0 it is not. The
// metrics carry the build information and the start time.
func TestServerCertExpiryWarning(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeServerCert(t, dir, pki.Validity{Days: 3})
	leaf := readLeaf(t, cert)
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	before := time.Now()
	p := startServe(t, "--cert", cert, "--key", key, "--metrics-addr", maddr)
	rec := p.waitLog(msgCertExpiring, 1)
	if rec["level"] != "WARN" || rec["cert_name"] != "CN=localhost" || rec["source"] != "file" ||
		(rec["days_left"] != float64(2) && rec["days_left"] != float64(3)) ||
		rec["cert_not_after"] != leaf.NotAfter.UTC().Format(time.RFC3339) {
		t.Errorf("warning %v", rec)
	}
	if code, _ := readyz(t, maddr); code != 200 {
		t.Errorf("/readyz = %d for a certificate valid for 3 more days", code)
	}
	_, body := curl(t, "http://"+maddr+"/metrics")
	if !strings.Contains(body, `seclisten_build_info{goversion="`+runtime.Version()+`",version="`) {
		t.Errorf("no seclisten_build_info in the metrics")
	}
	if start := metric(t, body, "seclisten_start_time_seconds"); start < float64(before.Unix()) || start > float64(time.Now().Unix()+1) {
		t.Errorf("seclisten_start_time_seconds = %f, want between %d and now", start, before.Unix())
	}
	if got := metric(t, body, `seclisten_certificate_expiry_timestamp_seconds{name="localhost",source="file"}`); got != float64(leaf.NotAfter.Unix()) {
		t.Errorf("certificate expiry = %f, want %d", got, leaf.NotAfter.Unix())
	}
	p.stop()

	// Off: the check runs before the first client is served.
	p = startServe(t, "--cert", cert, "--key", key, "--cert-warn", "0")
	exchangeWith(t, p.addr, "hello", defaultReply, "-servername", "localhost")
	p.waitLog("handshake", 1)
	if recs := p.logRecords(msgCertExpiring); len(recs) != 0 {
		t.Errorf("warned with --cert-warn 0: %v", recs[0])
	}
	p.stop()
}

// Bad --cert-warn values: one sentence, exit status 2.
func TestCertWarnBadInput(t *testing.T) {
	for _, tt := range []struct{ value, want string }{
		{"bogus", `seclisten: invalid --cert-warn: "bogus" is not a duration like 30s, 2m or 1h30m` + "\n"},
		{"-1h", "seclisten: --cert-warn must be 0 (off) or a positive duration, got -1h0m0s\n"},
	} {
		t.Run(tt.value, func(t *testing.T) {
			cmd := seclistenCmd(t, "serve", "--cert-warn="+tt.value)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 2 || stderr.String() != tt.want {
				t.Errorf("exit %d, stderr %q; want 2, %q", code, stderr.String(), tt.want)
			}
		})
	}
}

// msgRenewFailed is pkg/acme's record of a failed renewal attempt.
const msgRenewFailed = "ACME renewal failed; the certificate in service stays until a renewal succeeds"

// logTime is the time of a log record.
func logTime(t *testing.T, rec map[string]any) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(rec["time"]))
	if err != nil {
		t.Fatalf("record time: %v in %v", err, rec)
	}
	return at
}

// With Pebble's 30-second profile and no renewal interval given, renewals
// are checked at a tenth of the lifetime: each certificate is renewed
// before it expires, logged, and served, and none is ever served expired.
func TestACMEShortLivedRenewsBeforeExpiry(t *testing.T) {
	// Mostly waiting on certificates, CRLs and bans to expire: beside the others.
	t.Parallel()
	port := freePort(t)
	peb := startPebble(t, pebbleOptions{tlsPort: port, httpPort: freePort(t)})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	const name = "short.seclisten.test"
	p := startServe(t, peb.acmeArgs(t, t.TempDir(), "--addr", addr, "--acme-domain", name,
		"--acme-http-addr", "off", "--acme-profile", "tiny")...)
	rec := p.waitLogWithin("ACME certificate in service", 1, 30*time.Second)
	if d, err := time.ParseDuration(fmt.Sprint(rec["renew_check"])); err != nil || d > 3*time.Second || d < time.Second {
		t.Errorf("renew_check = %v for a 30-second certificate, want about 3s", rec["renew_check"])
	}
	notAfter, err := time.Parse(time.RFC3339, fmt.Sprint(rec["not_after"]))
	if err != nil {
		t.Fatalf("not_after: %v in %v", err, rec)
	}
	first := servedSerial(t, addr, name)
	for i := 1; i <= 2; i++ {
		renewed := p.waitLogWithin("ACME certificate renewed", i, 60*time.Second)
		if at := logTime(t, renewed); !at.Before(notAfter) {
			t.Errorf("renewal %d at %s, after the expiry of the certificate it replaces (%s)", i, at, notAfter)
		}
		if notAfter, err = time.Parse(time.RFC3339, fmt.Sprint(renewed["not_after"])); err != nil {
			t.Fatalf("not_after: %v in %v", err, renewed)
		}
	}
	waitFor(t, "the renewed certificate in service", func() bool {
		return servedSerial(t, addr, name) != first
	})
	if recs := p.logRecords(msgCertExpired); len(recs) > 0 {
		t.Errorf("an expired certificate was in service: %v", recs[0])
	}
	if recs := p.logRecords(msgRenewFailed); len(recs) > 0 {
		t.Errorf("a renewal failed: %v", recs[0])
	}
	p.stop()
}

// A renewal that fails is logged at every attempt with its next retry,
// whatever fails: the CA (gone), or the storage (its certificates
// directory replaced by a file: unwritable even for root, like a full
// disk; the locks are left alone, as certmagic's lock keeper would write
// its complaint to stderr outside our log). When
// the certificate expires, an error is logged and /readyz says 503 with
// the reason.
func TestACMERenewalFailuresLogged(t *testing.T) {
	// Mostly waiting on certificates, CRLs and bans to expire: beside the others.
	t.Parallel()
	for _, tt := range []struct {
		name  string
		cause func(t *testing.T, peb *pebble, storage string)
		want  string // in the error
	}{
		{"CA unreachable", func(t *testing.T, peb *pebble, _ string) {
			_ = peb.cmd.Process.Kill()
			<-peb.done
		}, "connection refused"},
		{"storage unwritable", func(t *testing.T, _ *pebble, storage string) {
			certs := filepath.Join(storage, "certificates")
			if err := os.RemoveAll(certs); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(certs, []byte("not a directory\n"), 0o444); err != nil {
				t.Fatal(err)
			}
		}, "not a directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port := freePort(t)
			peb := startPebble(t, pebbleOptions{tlsPort: port, httpPort: freePort(t)})
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			storage := t.TempDir()
			const name = "failing.seclisten.test"
			p := startServe(t, peb.acmeArgs(t, storage, "--addr", addr, "--acme-domain", name,
				"--acme-http-addr", "off", "--acme-profile", "tiny", "--metrics-addr", maddr)...)
			p.waitLogWithin("ACME certificate in service", 1, 30*time.Second)
			if code, body := readyz(t, maddr); code != 200 {
				t.Errorf("/readyz = %d %q with the certificate in service", code, body)
			}
			tt.cause(t, peb, storage)

			for i := 1; i <= 2; i++ {
				rec := p.waitLogWithin(msgRenewFailed, i, 60*time.Second)
				next, err := time.Parse(time.RFC3339, fmt.Sprint(rec["next_retry"]))
				if err != nil || !next.After(logTime(t, rec).Add(-time.Second)) || rec["attempt"] != float64(i) ||
					rec["domain"] != name || !strings.Contains(fmt.Sprint(rec["err"]), tt.want) || rec["level"] != "WARN" {
					t.Errorf("failure record %d: %v", i, rec)
				}
			}
			rec := p.waitLogWithin(msgCertExpired, 1, 60*time.Second)
			if rec["source"] != "acme" || !strings.Contains(fmt.Sprint(rec["cert_sans"]), name) {
				t.Errorf("expired record %v", rec)
			}
			if code, body := readyz(t, maddr); code != 503 || !strings.Contains(body, " expired at ") {
				t.Errorf("/readyz = %d %q with an expired certificate in service", code, body)
			}
			p.stop()
		})
	}
}
