package cidr

import "net/netip"

// Contains reports whether a prefix in list contains addr. An IPv4-mapped
// IPv6 address (::ffff:192.0.2.1) is matched as the IPv4 address it maps,
// so a dual-stack socket cannot slip past an IPv4 list.
func Contains(list []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range list {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
