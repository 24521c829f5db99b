// Package server builds seclisten's pipeline from a config.Config and runs
// it until its context ends: it listens, wires the listener, the exchange and
// the printer together, and shuts down gracefully. It parses no bytes on the
// wire itself.
package server
