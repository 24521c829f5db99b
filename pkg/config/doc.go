// Package config holds seclisten's configuration: the Config struct, its
// defaults, and Validate, which holds every rule between settings. It reads
// no flags, environment or files; cmd/seclisten does that.
//
// A Config holds typed values (durations, sizes, prefixes, a TLS version,
// a client-authentication mode). A front end parses each value once, with
// the Parse functions beside its type (here, and in tlsconf), and the
// packages that serve with a Config trust it once Validate has passed.
// Validate names settings by key, the flag's name without dashes, in a
// setting.Error, for the front end to word as its user knows them.
package config
