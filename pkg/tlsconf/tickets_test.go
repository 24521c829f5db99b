package tlsconf_test

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/tlsconf"
)

// ticketConn is a server connection that keeps what RecordTicket told it.
type ticketConn struct {
	net.Conn
	told, other bool
}

func (r *ticketConn) RecordTicket(other bool) { r.told, r.other = true, other }

// resumeOn runs one handshake on src with ccfg (and its session cache),
// returning whether it resumed and what the connection was told.
func resumeOn(t *testing.T, src *tlsconf.Source, ccfg *tls.Config) (resumed bool, rec *ticketConn) {
	t.Helper()
	cs, ss := net.Pipe()
	rec = &ticketConn{Conn: ss}
	done := make(chan error, 1)
	go func() {
		srv := tls.Server(rec, src.Config())
		_ = srv.SetDeadline(time.Now().Add(hangGuard))
		err := srv.Handshake()
		if err == nil {
			_, err = srv.Write([]byte("x"))
		}
		done <- err
	}()
	cli := tls.Client(cs, ccfg)
	_ = cli.SetDeadline(time.Now().Add(hangGuard))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(cli, buf); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	resumed = cli.ConnectionState().DidResume
	// No close_notify: on a synchronous pipe it would wait for a reader.
	_, _ = cs.Close(), ss.Close()
	return resumed, rec
}

// Two Sources sharing ticket keys with different ReplicaIDs: a ticket
// from A resumes on B, which is told it is another replica's; one resumed
// on A is A's own. TLS 1.3 and 1.2.
func TestReplicaTickets(t *testing.T) {
	f := newFixture(t)
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			keys := [][32]byte{{7}}
			optsA, optsB := f.opts(tlsconf.NoClientCert), f.opts(tlsconf.NoClientCert)
			optsA.ReplicaID, optsB.ReplicaID = "a", "b"
			a, b := newSource(t, optsA), newSource(t, optsB)
			a.Config().SetSessionTicketKeys(keys)
			b.Config().SetSessionTicketKeys(keys)
			ccfg := f.clientConfig(nil)
			ccfg.MaxVersion = v
			ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			if resumed, _ := resumeOn(t, a, ccfg); resumed {
				t.Fatal("first handshake resumed")
			}
			resumed, rec := resumeOn(t, b, ccfg)
			if !resumed || !rec.told || !rec.other {
				t.Errorf("A's ticket on B: resumed %v, told %v, other replica %v; want all true", resumed, rec.told, rec.other)
			}
			// B issued a new ticket; back on B it is B's own.
			resumed, rec = resumeOn(t, b, ccfg)
			if !resumed || !rec.told || rec.other {
				t.Errorf("B's ticket on B: resumed %v, told %v, other replica %v; want resumed, told, own", resumed, rec.told, rec.other)
			}
		})
	}
}
