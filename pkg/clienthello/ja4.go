package clienthello

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"slices"
)

// JA4 is the TLS-client part of FoxIO's JA4 fingerprint (BSD 3-Clause,
// github.com/FoxIO-LLC/ja4, technical_details/JA4.md), for a ClientHello
// seen over TCP:
//
//	t 13 d 15 16 h2 _ sha256(sorted suites)[:12] _ sha256(sorted extensions "_" signature schemes)[:12]
//
// the highest version offered, d with a server name (i without), the
// numbers of cipher suites and of extensions (at most 99), the first and
// last characters of the first ALPN protocol, then the two truncated
// hashes. GREASE values (RFC 8701) are ignored everywhere. The extension
// hash leaves out server_name and ALPN, which the first part already
// covers, and keeps the signature schemes in the client's order.
//
// crypto/tls's ClientHelloInfo has all JA4 needs since Go 1.24
// (Extensions); the order of the extensions does not matter, since JA4
// sorts them.
func JA4(h *tls.ClientHelloInfo) string {
	a, b, c := ja4Parts(h)
	return a + "_" + hash12(b) + "_" + hash12(c)
}

// JA4Raw is JA4 unhashed ("JA4_r"): the sorted lists themselves, in hex.
func JA4Raw(h *tls.ClientHelloInfo) string {
	a, b, c := ja4Parts(h)
	return a + "_" + b + "_" + c
}

func ja4Parts(h *tls.ClientHelloInfo) (a, b, c string) {
	ids := withoutGREASE(h.CipherSuites)
	suites := hexList(ids, true)
	var exts []uint16
	count, sni := 0, h.ServerName != ""
	for _, e := range h.Extensions {
		if isGREASE(e) {
			continue
		}
		count++
		switch e {
		case extServerName:
			sni = true
		case extALPN:
		default:
			exts = append(exts, e)
		}
	}
	sigs := make([]uint16, 0, len(h.SignatureSchemes))
	for _, s := range h.SignatureSchemes {
		sigs = append(sigs, uint16(s))
	}
	c = hexList(exts, true)
	if s := hexList(withoutGREASE(sigs), false); s != "" {
		c += "_" + s
	}
	d := 'i'
	if sni {
		d = 'd'
	}
	// t13d1516h2: fixed widths, built without fmt (once per handshake).
	v, alpn := versionCode(maxVersion(h.SupportedVersions)), alpnCode(h.SupportedProtos)
	n, m := min(len(ids), 99), min(count, 99)
	a = string([]byte{'t', v[0], v[1], byte(d), byte('0' + n/10), byte('0' + n%10),
		byte('0' + m/10), byte('0' + m%10), alpn[0], alpn[1]})
	return a, suites, c
}

// The extension numbers JA4 treats apart (RFC 6066 section 3, RFC 7301).
const (
	extServerName = 0x0000
	extALPN       = 0x0010
)

// isGREASE reports whether v is one of RFC 8701's reserved values, which
// clients send to keep servers tolerant and which say nothing of them.
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

func withoutGREASE(l []uint16) []uint16 {
	out := make([]uint16, 0, len(l))
	for _, v := range l {
		if !isGREASE(v) {
			out = append(out, v)
		}
	}
	return out
}

// hexList is l as comma-separated four-digit lowercase hex, sorted if
// asked.
func hexList(l []uint16, sorted bool) string {
	if sorted {
		l = slices.Clone(l)
		slices.Sort(l)
	}
	if len(l) == 0 {
		return ""
	}
	b := make([]byte, 0, 5*len(l))
	for i, v := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, hexDigits[v>>12], hexDigits[v>>8&0xf], hexDigits[v>>4&0xf], hexDigits[v&0xf])
	}
	return string(b)
}

// hash12 is the first 12 hex digits of the SHA-256 of s, or twelve zeros
// for nothing.
func hash12(s string) string {
	if s == "" {
		return "000000000000"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// maxVersion is the highest version in l that is not GREASE, or 0.
func maxVersion(l []uint16) uint16 {
	var m uint16
	for _, v := range l {
		if !isGREASE(v) && v > m {
			m = v
		}
	}
	return m
}

func versionCode(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "13"
	case tls.VersionTLS12:
		return "12"
	case tls.VersionTLS11:
		return "11"
	case tls.VersionTLS10:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	}
	return "00"
}

// alpnCode is the first and last characters of the first protocol, or
// when either is not alphanumeric the first and last hex digits of the
// protocol; 00 without ALPN.
func alpnCode(protos []string) string {
	if len(protos) == 0 || protos[0] == "" {
		return "00"
	}
	p := protos[0]
	first, last := p[0], p[len(p)-1]
	if isAlnum(first) && isAlnum(last) {
		return string([]byte{first, last})
	}
	x := hex.EncodeToString([]byte(p))
	return string([]byte{x[0], x[len(x)-1]})
}

const hexDigits = "0123456789abcdef"

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
