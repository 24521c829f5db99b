//go:build !linux

package listener

import "net"

// listenConfig is Go's default: keepalive set on each accepted socket.
func listenConfig() *net.ListenConfig { return &net.ListenConfig{} }
