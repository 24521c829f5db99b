// Package config holds seclisten's configuration: the Config struct, its
// defaults, and Validate, which holds every rule that involves more than one
// field. It reads no flags, environment or files; cmd/seclisten does that.
package config
