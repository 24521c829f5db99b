package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/pires/go-proxyproto"

	"github.com/seclisten/seclisten/pkg/internal/cidr"
	"github.com/seclisten/seclisten/pkg/internal/replay"
)

// ErrUntrusted refuses a connection from an address outside the trusted
// proxy ranges.
var ErrUntrusted = errors.New("connection from an address that is not a trusted proxy")

// HeaderError is a missing or malformed header from a trusted proxy.
type HeaderError struct{ Err error }

func (e *HeaderError) Error() string { return "bad PROXY header: " + e.Err.Error() }
func (e *HeaderError) Unwrap() error { return e.Err }

// Result is what the header said.
type Result struct {
	// Conn reads the client's bytes (what followed the header).
	Conn net.Conn
	// Client is the real client address; the proxy's own address for a
	// LOCAL or UNKNOWN header.
	Client netip.AddrPort
	// Local is true for a LOCAL (v2) or UNKNOWN (v1) header: the proxy
	// speaking for itself, as in health checks. The spec says to serve such
	// a connection with the real endpoints.
	Local bool
}

// Read checks that the peer of c is a trusted proxy and reads its header.
// The caller sets the deadline (the header must arrive within it). Errors:
// ErrUntrusted, *HeaderError, or the read error.
func Read(c net.Conn, trusted []netip.Prefix) (*Result, error) {
	peer, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return nil, fmt.Errorf("peer address: %w", err)
	}
	if !cidr.Contains(trusted, peer.Addr()) {
		return nil, ErrUntrusted
	}
	// Small: a v1 header is at most 107 bytes, and a longer v2 header is
	// read through the buffer, not into it.
	br := bufio.NewReaderSize(c, 256)
	h, err := proxyproto.Read(br)
	if err != nil {
		var nerr net.Error
		if errors.As(err, &nerr) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
			return nil, err
		}
		return nil, &HeaderError{Err: err}
	}
	res := &Result{Conn: c, Client: peer}
	if n := br.Buffered(); n > 0 {
		rest, _ := br.Peek(n)
		res.Conn = replay.New(c, append([]byte(nil), rest...))
	}
	if h.Command.IsLocal() {
		res.Local = true
		return res, nil
	}
	if src, ok := h.SourceAddr.(*net.TCPAddr); ok && src != nil {
		if a, ok := netip.AddrFromSlice(src.IP); ok {
			res.Client = netip.AddrPortFrom(a.Unmap(), uint16(src.Port))
		}
	}
	return res, nil
}
