// Package cidr matches addresses against lists of CIDR prefixes: the one
// match behind the allow and deny lists and the trusted proxies.
package cidr
