package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Identity is what a client certificate says about its holder.
type Identity struct {
	// Name is how the client is named in output: "CN=alice", or the first
	// URI SAN (a SPIFFE ID) or DNS SAN when the subject has no common name.
	Name        string
	Subject     string
	CommonName  string
	OUs         []string
	DNSNames    []string
	URIs        []string
	Emails      []string
	IPs         []string
	Issuer      string
	Serial      string // 0x-prefixed hexadecimal
	Fingerprint string // SHA-256 of the DER, lowercase hex
	NotBefore   time.Time
	NotAfter    time.Time
}

// FromCertificate describes a certificate. The description of a recent
// certificate is remembered (see described): a client presents the same
// certificate on every connection, and the server describes it twice per
// handshake (the allowlist check, the handshake line). Its slices are
// shared between the descriptions of one certificate, as they already
// were with the certificate's own: they are never modified.
func FromCertificate(c *x509.Certificate) Identity {
	if len(c.Raw) == 0 || len(c.Raw) > describedMaxDER {
		return describe(c)
	}
	described.Lock()
	id, ok := described.m[string(c.Raw)]
	described.Unlock()
	if ok {
		return id
	}
	id = describe(c)
	described.Lock()
	if len(described.m) >= describedMax {
		// Bounded, without bookkeeping: start afresh. Clients that come
		// back are described again once.
		clear(described.m)
	}
	if described.m == nil {
		described.m = make(map[string]Identity)
	}
	described.m[string(c.Raw)] = id
	described.Unlock()
	return id
}

// described remembers the descriptions of the last certificates seen, by
// their DER: at most describedMax of them, each at most describedMaxDER
// bytes, so at most a few MiB whatever clients send.
var described struct {
	sync.Mutex
	m map[string]Identity
}

const (
	describedMax    = 256
	describedMaxDER = 8 << 10
)

func describe(c *x509.Certificate) Identity {
	id := Identity{
		Subject:     c.Subject.String(),
		CommonName:  c.Subject.CommonName,
		OUs:         c.Subject.OrganizationalUnit,
		DNSNames:    c.DNSNames,
		Emails:      c.EmailAddresses,
		Issuer:      c.Issuer.String(),
		Serial:      Serial(c),
		Fingerprint: Fingerprint(c),
		NotBefore:   c.NotBefore,
		NotAfter:    c.NotAfter,
	}
	for _, u := range c.URIs {
		id.URIs = append(id.URIs, u.String())
	}
	for _, ip := range c.IPAddresses {
		id.IPs = append(id.IPs, ip.String())
	}
	switch {
	case id.CommonName != "":
		id.Name = "CN=" + id.CommonName
	case len(id.URIs) > 0:
		id.Name = "URI=" + id.URIs[0]
	case len(id.DNSNames) > 0:
		id.Name = "DNS=" + id.DNSNames[0]
	default:
		id.Name = "subject=" + id.Subject
	}
	return id
}

// Serial formats a certificate's serial number as 0x-prefixed hex, the way
// CRLs and openssl show it.
func Serial(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return "0x0"
	}
	return "0x" + c.SerialNumber.Text(16)
}

// Fingerprint is the lowercase hex SHA-256 of the certificate's DER.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// SANs lists the subject alternative names, typed: "DNS:x", "IP:x",
// "URI:x", "email:x".
func (id Identity) SANs() []string {
	var s []string
	for _, v := range id.DNSNames {
		s = append(s, "DNS:"+v)
	}
	for _, v := range id.IPs {
		s = append(s, "IP:"+v)
	}
	for _, v := range id.URIs {
		s = append(s, "URI:"+v)
	}
	for _, v := range id.Emails {
		s = append(s, "email:"+v)
	}
	return s
}

// Allowlist restricts which verified clients are served. A client is
// allowed when every non-empty list has at least one match: the lists are
// ANDed with each other, and the entries within a list are ORed. Matching
// is exact (case-sensitive for CN, OU and URI; case-insensitive for DNS
// names, as DNS is). The zero Allowlist allows every verified client.
type Allowlist struct {
	CN  []string
	OU  []string
	DNS []string
	URI []string
}

// Empty reports whether no list is set.
func (a Allowlist) Empty() bool {
	return len(a.CN) == 0 && len(a.OU) == 0 && len(a.DNS) == 0 && len(a.URI) == 0
}

// NotAllowedError says which allowlist a client missed and what it
// presented.
type NotAllowedError struct {
	// List names the Allowlist field the client missed: "CN", "OU", "DNS"
	// or "URI".
	List string
	// Presented is what the certificate had for that field.
	Presented []string
}

func (e *NotAllowedError) Error() string {
	var allowed string
	switch e.List {
	case "CN":
		allowed = "the allowed common names"
	case "OU":
		allowed = "the allowed organizational units"
	case "DNS":
		allowed = "the allowed DNS names"
	case "URI":
		allowed = "the allowed URIs"
	default:
		allowed = "the " + e.List + " allowlist"
	}
	switch len(e.Presented) {
	case 0:
		return fmt.Sprintf("certificate has no %s, so it matches none of %s", e.List, allowed)
	case 1:
		return fmt.Sprintf("%s=%s is not in %s", e.List, e.Presented[0], allowed)
	}
	vals := make([]string, len(e.Presented))
	for i, p := range e.Presented {
		vals[i] = e.List + "=" + p
	}
	return fmt.Sprintf("none of %s is in %s", strings.Join(vals, ", "), allowed)
}

// Check reports whether id may be served: nil, or a *NotAllowedError
// naming the first list it fails.
func (a Allowlist) Check(id Identity) error {
	if len(a.CN) > 0 && !slices.Contains(a.CN, id.CommonName) {
		var presented []string
		if id.CommonName != "" {
			presented = []string{id.CommonName}
		}
		return &NotAllowedError{List: "CN", Presented: presented}
	}
	if len(a.OU) > 0 && !slices.ContainsFunc(id.OUs, func(ou string) bool { return slices.Contains(a.OU, ou) }) {
		return &NotAllowedError{List: "OU", Presented: id.OUs}
	}
	if len(a.DNS) > 0 && !slices.ContainsFunc(id.DNSNames, func(n string) bool {
		return slices.ContainsFunc(a.DNS, func(allowed string) bool { return strings.EqualFold(allowed, n) })
	}) {
		return &NotAllowedError{List: "DNS", Presented: id.DNSNames}
	}
	if len(a.URI) > 0 && !slices.ContainsFunc(id.URIs, func(u string) bool { return slices.Contains(a.URI, u) }) {
		return &NotAllowedError{List: "URI", Presented: id.URIs}
	}
	return nil
}
