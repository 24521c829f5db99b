package exchange_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/seclisten/seclisten/pkg/exchange"
)

// printer is an Observer that prints what the exchange sees.
type printer struct{}

func (printer) Message(msg []byte) { fmt.Printf("message %q\n", msg) }
func (printer) Reply([]byte)       {}

// The read-print-reply loop over any stream: each line, and a last line
// without a newline, is answered.
func ExampleRun() {
	var out bytes.Buffer
	stream := struct {
		io.Reader
		io.Writer
	}{strings.NewReader("hello\r\nworld"), &out}
	res := exchange.Run(stream, exchange.Options{Reply: []byte("ok"), MaxLine: 1024}, printer{})
	fmt.Printf("%d messages, %s, replies %q\n", res.Messages, res.End, out.String())
	// Output:
	// message "hello"
	// message "world"
	// 2 messages, client closed, replies "ok\nok\n"
}
