package testbed

import (
	"fmt"
	"slices"
	"strings"
)

// Expect is what a correct client does on a case.
type Expect int

const (
	// Connects: the server is good; the client completes the handshake.
	Connects Expect = iota + 1
	// Refuses: the server is bad; the client ends the handshake.
	Refuses
	// RefusesOrFetches: the chain is incomplete; the client refuses it, or
	// fetches the missing certificate (AIA) and connects.
	RefusesOrFetches
	// RefusesIfChecked: the certificate is revoked; a client that checks
	// revocation refuses it, one that does not is graded NotChecked.
	RefusesIfChecked
	// TimesOut: the server stalls; the client gives up within SlowFor.
	TimesOut
	// ReportsError: the server stops mid-handshake; the client closes
	// instead of waiting for ever.
	ReportsError
	// PresentsCert: the server asks for a client certificate; the client
	// presents one from the testbed CA.
	PresentsCert
)

// String is what a correct client does, in a few words.
func (e Expect) String() string {
	switch e {
	case Connects:
		return "connects"
	case Refuses:
		return "refuses"
	case RefusesOrFetches:
		return "refuses or fetches the intermediate"
	case RefusesIfChecked:
		return "refuses if it checks revocation"
	case TimesOut:
		return "times out, does not hang"
	case ReportsError:
		return "reports an error, does not hang"
	case PresentsCert:
		return "presents a client certificate"
	}
	return fmt.Sprintf("Expect(%d)", int(e))
}

// Case is one misbehaving (or good) server.
type Case struct {
	// Name is the case's name, lower case words joined by hyphens.
	Name string
	// Offset is the case's port relative to the base port: fixed, so that
	// a case keeps its port whichever cases are chosen.
	Offset int
	// Does is what the server does, for the table and the README.
	Does string
	// Expect is what a correct client does.
	Expect Expect
}

// The cases, in the order of their ports. Offsets are fixed: a new case
// takes the next free one.
var cases = []Case{
	{"good", 0, "a valid chain for localhost, 127.0.0.1 and ::1", Connects},
	{"expired", 1, "its certificate expired yesterday", Refuses},
	{"not-yet-valid", 2, "its certificate is valid from tomorrow", Refuses},
	{"wrong-host", 3, "a valid certificate for " + OtherHost, Refuses},
	{"self-signed", 4, "a self-signed certificate", Refuses},
	{"unknown-ca", 5, "a chain to a root the client was not given", Refuses},
	{"missing-intermediate", 6, "sends its leaf without the intermediate that signed it", RefusesOrFetches},
	{"wrong-eku", 7, "a certificate for TLS clients only (extended key usage clientAuth)", Refuses},
	{"weak-key", 8, "a certificate with a 1024-bit RSA key", Refuses},
	{"tls10", 9, "speaks only TLS 1.0", Refuses},
	{"tls11", 10, "speaks only TLS 1.1", Refuses},
	{"slow-handshake", 11, "waits before it answers the ClientHello", TimesOut},
	{"abort-mid-handshake", 12, "sends its ServerHello, then stops", ReportsError},
	{"require-client-cert", 13, "asks for a client certificate from the testbed CA", PresentsCert},
	{"revoked", 14, "its certificate is listed in the CRL it points to", RefusesIfChecked},
}

// HTTPOffset is the port, relative to the base port, of the HTTP server
// that publishes the CRLs and the intermediate certificate.
const HTTPOffset = 15

// Cases returns every case, in port order.
func Cases() []Case { return slices.Clone(cases) }

// Names is the names of every case, in port order.
func Names() []string {
	out := make([]string, len(cases))
	for i, c := range cases {
		out[i] = c.Name
	}
	return out
}

// Select returns the cases named, in port order; no names means all. An
// unknown name is an error listing the known ones.
func Select(names []string) ([]Case, error) {
	if len(names) == 0 {
		return Cases(), nil
	}
	var out []Case
	for _, c := range cases {
		if slices.Contains(names, c.Name) {
			out = append(out, c)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(cases, func(c Case) bool { return c.Name == n }) {
			return nil, fmt.Errorf("unknown case %q (the cases: %s)", n, strings.Join(Names(), ", "))
		}
	}
	return out, nil
}
