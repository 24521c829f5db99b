package cidr

import (
	"net/netip"
	"testing"
)

func TestContains(t *testing.T) {
	list := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	tests := []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true}, // mapped is the IPv4 address
		{"11.0.0.1", false},
		{"2001:db8::1", true},
		{"2001:db8::1%eth0", true}, // the zone is dropped
		{"fe80::1%eth0", false},
		{"2001:db9::1", false},
	}
	for _, tt := range tests {
		if got := Contains(list, netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if Contains(nil, netip.MustParseAddr("10.0.0.1")) {
		t.Error("Contains(nil list) = true")
	}
}
