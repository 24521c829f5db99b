package admit_test

import (
	"fmt"
	"net/netip"

	"github.com/seclisten/seclisten/pkg/internal/admit"
)

// An Admitter is asked once per accepted connection, before any TLS work,
// with the client's address (from a PROXY header if there is one).
func Example() {
	a := admit.New(admit.Options{
		Deny:   []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Limits: admit.Limits{Rate: 10, Burst: 20, MaxConcurrent: 1},
	})
	var open []func()
	for _, s := range []string{"192.0.2.7", "198.51.100.1", "198.51.100.1", "2001:db8:1:2::1", "2001:db8:1:2::2"} {
		addr := netip.MustParseAddr(s)
		release, why, ok := a.Admit(addr)
		if !ok {
			fmt.Printf("%s refused: %s\n", a.Key(addr), why)
			continue
		}
		fmt.Printf("%s admitted\n", a.Key(addr))
		open = append(open, release)
	}
	for _, release := range open {
		release() // when the connection ends
	}
	// Output:
	// 192.0.2.7 refused: deny-list
	// 198.51.100.1 admitted
	// 198.51.100.1 refused: per-ip-cap
	// 2001:db8:1:2::/64 admitted
	// 2001:db8:1:2::/64 refused: per-ip-cap
}
