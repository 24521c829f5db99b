package exchange_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/seclisten/seclisten/pkg/exchange"
)

// printer prints each message and reply, as a server would on stdout.
type printer struct{}

func (printer) Message(msg []byte) { fmt.Printf("message: %s\n", msg) }
func (printer) Reply(reply []byte) { fmt.Printf("reply:   %s\n", reply) }

// Run serves one connection: any io.ReadWriter, here a client's two lines
// and the buffer that collects what it is sent.
func ExampleRun() {
	var sent bytes.Buffer
	conn := struct {
		io.Reader
		io.Writer
	}{strings.NewReader("hello\r\nbye"), &sent}
	res := exchange.Run(conn, exchange.Options{Reply: []byte("ok"), MaxLine: 64}, printer{})
	fmt.Printf("%d messages, %d bytes in, %q sent\n", res.Messages, res.BytesIn, sent.String())
	// Output:
	// message: hello
	// reply:   ok
	// message: bye
	// reply:   ok
	// 2 messages, 10 bytes in, "ok\nok\n" sent
}
