package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// A served client whose certificate expires within --client-cert-warn is
// warned of once a day, and the metrics show the earliest expiry.
func TestClientCertExpiryWarning(t *testing.T) {
	dir := pkiDir(t)
	out, err := seclistenCmd(t, "certs", "issue", "--dir", dir, "--client", "soon", "--days", "5").CombinedOutput()
	if err != nil {
		t.Fatalf("certs issue: %v\n%s", err, out)
	}
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, mtlsArgs(dir, "--client-auth", "verify-if-given", "--metrics-addr", maddr)...)
	for i := range 2 {
		exchangeWith(t, p.addr, fmt.Sprintf("hello %d", i), defaultReply, certArgs(dir, "soon")...)
	}
	exchangeWith(t, p.addr, "long-lived", defaultReply, certArgs(dir, "client")...)
	// Every handshake is logged before its reply: all three are in.
	p.waitLog("handshake", 3)
	recs := p.logRecords("client certificate expires soon")
	if len(recs) != 1 {
		t.Fatalf("%d warnings for two connections of one certificate, want 1", len(recs))
	}
	rec := recs[0]
	if rec["client"] != "CN=soon" || rec["code"] != "client-cert-expiring" || rec["flags"] != "--client-cert-warn" ||
		(rec["days_left"] != float64(4) && rec["days_left"] != float64(5)) {
		t.Errorf("warning %v", rec)
	}

	leaf := readLeaf(t, filepath.Join(dir, "soon.pem"))
	_, body := curl(t, "http://"+maddr+"/metrics")
	for _, want := range []string{
		fmt.Sprintf("seclisten_client_cert_earliest_expiry_timestamp_seconds %g", float64(leaf.NotAfter.Unix())),
		`seclisten_notices_total{code="client-cert-expiring"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// --client-cert-warn 0 turns the warnings off.
func TestClientCertExpiryWarningOff(t *testing.T) {
	dir := pkiDir(t)
	out, err := seclistenCmd(t, "certs", "issue", "--dir", dir, "--client", "soon", "--days", "5").CombinedOutput()
	if err != nil {
		t.Fatalf("certs issue: %v\n%s", err, out)
	}
	p := startServe(t, mtlsArgs(dir, "--client-cert-warn", "0")...)
	exchangeWith(t, p.addr, "hello", defaultReply, certArgs(dir, "soon")...)
	p.waitLog("handshake", 1)
	if recs := p.logRecords("client certificate expires soon"); len(recs) != 0 {
		t.Errorf("warned with the warnings off: %v", recs[0])
	}
}
