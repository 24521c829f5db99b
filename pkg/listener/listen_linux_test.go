package listener_test

import (
	"context"
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/seclisten/seclisten/pkg/listener"
)

// An accepted socket has Go's keepalive (15 s idle, 15 s interval, 9
// probes) though Listen sets it only on the listening socket.
func TestListenKeepAliveInherited(t *testing.T) {
	ln, err := listener.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name       string
		level, opt int
		v          int
	}{
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 15},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9},
	}
	if err := rc.Control(func(fd uintptr) {
		for _, w := range want {
			v, err := unix.GetsockoptInt(int(fd), w.level, w.opt)
			if err != nil || v != w.v {
				t.Errorf("accepted socket: %s = %d (%v), want %d", w.name, v, err, w.v)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
}
