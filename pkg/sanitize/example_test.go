package sanitize_test

import (
	"fmt"

	"github.com/seclisten/seclisten/pkg/sanitize"
)

// A line from a client that tries to turn the terminal red and to overwrite
// what was printed before it prints as one inert line.
func ExampleString() {
	fmt.Println(sanitize.String([]byte("hi \x1b[31mred\rgotcha\n")))
	// Output: hi \x1b[31mred\rgotcha\n
}
