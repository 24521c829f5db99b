package outcome_test

import (
	"fmt"

	"github.com/seclisten/seclisten/pkg/outcome"
)

// Every outcome has one spelling, a kind and a text.
func Example() {
	for _, c := range []outcome.Code{outcome.Rate, outcome.Expired, outcome.IdleTimeout} {
		fmt.Printf("%s (%s): %s\n", c, c.Kind(), c.Text())
	}
	// Output:
	// rate (admission): too many new connections from one address (per-IP rate limit)
	// expired (verdict): client certificate expired
	// idle-timeout (close): client sent nothing for the idle timeout
}
