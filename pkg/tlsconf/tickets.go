package tlsconf

import (
	"bytes"
	"crypto/tls"
	"net"
)

// TicketRecorder is a connection told, on a resumption, whether the
// session ticket was issued by another replica (Options.ReplicaID).
type TicketRecorder interface {
	RecordTicket(otherReplica bool)
}

// replicaTag starts the SessionState.Extra entry naming the replica that
// issued a ticket.
var replicaTag = []byte("seclisten-replica:")

// markTickets makes cfg (this handshake's own copy) seal its tickets
// with the base config's keys (the fleet's, SetSessionTicketKeys) as
// crypto/tls would, adding the replica's name, and read the name back
// when a ticket is opened. crypto/tls calls the chosen config's
// WrapSession and UnwrapSession; the base config's EncryptTicket and
// DecryptTicket use the base's keys, which every config shares.
func (s *Source) markTickets(cfg *tls.Config, id string, conn net.Conn) {
	tag := append(append([]byte{}, replicaTag...), id...)
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		extra := ss.Extra[:0:0]
		for _, e := range ss.Extra {
			if !bytes.HasPrefix(e, replicaTag) {
				extra = append(extra, e)
			}
		}
		ss.Extra = append(extra, tag)
		return s.base.EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := s.base.DecryptTicket(identity, cs)
		if ss == nil || err != nil {
			return ss, err
		}
		if r, ok := conn.(TicketRecorder); ok {
			r.RecordTicket(!ticketFrom(ss, tag))
		}
		return ss, nil
	}
}

// ticketFrom reports whether ss names the replica of tag.
func ticketFrom(ss *tls.SessionState, tag []byte) bool {
	for _, e := range ss.Extra {
		if bytes.Equal(e, tag) {
			return true
		}
	}
	return false
}
