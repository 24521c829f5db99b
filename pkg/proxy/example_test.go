package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/seclisten/seclisten/pkg/proxy"
)

// A server behind a load balancer reads the PROXY header of each
// connection from a trusted proxy to learn the real client address.
func ExampleRead() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() { // the load balancer, on the same host
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(c, "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\nhello\n")
	}()

	c, err := ln.Accept()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second)) // the header must come in time
	res, err := proxy.Read(c, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if err != nil {
		fmt.Println(err)
		return
	}
	line, _ := bufio.NewReader(res.Conn).ReadString('\n')
	fmt.Printf("%s says %q\n", res.Client, line)
	// Output: 203.0.113.7:56324 says "hello\n"
}
