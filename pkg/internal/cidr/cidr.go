package cidr

import "net/netip"

// Contains reports whether a prefix in list contains addr. An IPv4-mapped
// IPv6 address (::ffff:192.0.2.1) is matched as the IPv4 address it maps,
// so a dual-stack socket cannot slip past an IPv4 list, and the zone of a
// link-local address (fe80::1%eth0) is dropped: netip.Prefix.Contains
// never matches a zoned address, which would let it past a deny list.
func Contains(list []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	for _, p := range list {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
