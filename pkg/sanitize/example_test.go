package sanitize_test

import (
	"fmt"

	"github.com/seclisten/seclisten/pkg/sanitize"
)

// What a client sends is escaped before it reaches a terminal: an ANSI
// color, a bidi override and a bare CR cannot act.
func ExampleString() {
	fmt.Println(sanitize.String([]byte("\x1b[31mred\x1b[0m \u202eevil\r")))
	// Output: \x1b[31mred\x1b[0m \u202eevil\r
}
