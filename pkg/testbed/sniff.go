package testbed

// recordSniffer follows the TLS records a client sends and keeps the first
// alert sent in the clear. A client that refuses the server's certificate
// in a TLS 1.3 handshake before it has switched to its handshake keys
// (OpenSSL does) sends its alert unencrypted, which crypto/tls, expecting
// an encrypted record, reports only as "bad record MAC".
type recordSniffer struct {
	hdr   [5]byte
	nhdr  int  // bytes of hdr read
	left  int  // body bytes of the current record still to come
	alert bool // the current record is an alert
	first []byte
	// Alert is the description of the first plaintext alert, -1 for none.
	Alert int
}

func newRecordSniffer() *recordSniffer { return &recordSniffer{Alert: -1} }

// feed passes bytes the client sent, in order.
func (s *recordSniffer) feed(b []byte) {
	for len(b) > 0 {
		if s.left == 0 {
			n := copy(s.hdr[s.nhdr:], b)
			s.nhdr += n
			b = b[n:]
			if s.nhdr < len(s.hdr) {
				return
			}
			s.nhdr = 0
			s.left = int(s.hdr[3])<<8 | int(s.hdr[4])
			s.alert = s.hdr[0] == 21 && s.left == 2 && s.Alert < 0
			s.first = s.first[:0]
			continue
		}
		n := min(s.left, len(b))
		if s.alert {
			s.first = append(s.first, b[:n]...)
			if len(s.first) == 2 {
				s.Alert = int(s.first[1])
				s.alert = false
			}
		}
		s.left -= n
		b = b[n:]
	}
}
