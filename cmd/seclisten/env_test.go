package main

import (
	"slices"
	"testing"
)

func TestUnknownEnv(t *testing.T) {
	known := envVars(withEnvVars(serveFlags()))
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"known and foreign variables", []string{"SECLISTEN_ADDR=:1", "PATH=/bin", "SECLISTENER=x", "MY_SECLISTEN_X=1"}, nil},
		{"one letter too many", []string{"SECLISTEN_CLIENT_CAS=ca.pem"},
			[]string{"SECLISTEN_CLIENT_CAS is not a seclisten variable; did you mean SECLISTEN_CLIENT_CA?"}},
		{"missing underscore", []string{"SECLISTEN_LOGLEVEL=debug"},
			[]string{"SECLISTEN_LOGLEVEL is not a seclisten variable; did you mean SECLISTEN_LOG_LEVEL?"}},
		{"transposition", []string{"SECLISTEN_IDLE_TIMEUOT=1m"},
			[]string{"SECLISTEN_IDLE_TIMEUOT is not a seclisten variable; did you mean SECLISTEN_IDLE_TIMEOUT?"}},
		{"two edits in a long name", []string{"SECLISTEN_ACME_DOMIANS=x"},
			[]string{"SECLISTEN_ACME_DOMIANS is not a seclisten variable; did you mean SECLISTEN_ACME_DOMAIN?"}},
		{"case", []string{"seclisten_addr=:1"},
			[]string{"seclisten_addr is not a seclisten variable; did you mean SECLISTEN_ADDR?"}},
		{"equally near", []string{"SECLISTEN_CRT=x"},
			[]string{"SECLISTEN_CRT is not a seclisten variable; did you mean SECLISTEN_CERT or SECLISTEN_CRL?"}},
		{"too far to guess", []string{"SECLISTEN_PORT=1", "SECLISTEN_DIR=pki", "SECLISTEN_CLIENT_CERT=c.pem"},
			[]string{
				"SECLISTEN_CLIENT_CERT is not a seclisten variable (see seclisten serve --help)",
				"SECLISTEN_DIR is not a seclisten variable (see seclisten serve --help)",
				"SECLISTEN_PORT is not a seclisten variable (see seclisten serve --help)",
			}},
		{"empty means unset", []string{"SECLISTEN_CLIENT_CAS="}, nil},
		{"hidden flags are known", []string{"SECLISTEN_REJECT_LOG_INTERVAL=1s"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unknownEnv(tt.environ, known); !slices.Equal(got, tt.want) {
				t.Errorf("unknownEnv(%q) =\n%q, want\n%q", tt.environ, got, tt.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "ABC", 3}, {"ABC", "", 3}, {"ADDR", "ADDR", 0},
		{"CLIENT_CAS", "CLIENT_CA", 1}, {"LOGLEVEL", "LOG_LEVEL", 1},
		{"TIMEUOT", "TIMEOUT", 1}, {"PORT", "CERT", 2}, {"KITTEN", "SITTING", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := editDistance(tt.b, tt.a); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}

// A misspelt variable is a warning at start, once, in the log; serve still
// runs and stops cleanly.
func TestServeWarnsOfUnknownVariable(t *testing.T) {
	const msg = "SECLISTEN_CLIENT_CAS is not a seclisten variable; did you mean SECLISTEN_CLIENT_CA?"
	p := startServeEnv(t, []string{"SECLISTEN_CLIENT_CAS=ca.pem"}, "--plain")
	// startServe returned after "listening", which is logged after the warnings.
	recs := p.logRecords(msg)
	if len(recs) != 1 || recs[0]["level"] != "WARN" {
		t.Fatalf("log records %q: %v, want one WARN", msg, recs)
	}
	c := newClient(t, p.addr)
	c.send("hi\n")
	c.expectLine(defaultReply)
	p.stop()
	if n := len(p.logRecords(msg)); n != 1 {
		t.Fatalf("warning logged %d times, want once", n)
	}
}
