// Package throttle keeps a condition that repeats thousands of times a
// second from flooding the log: per key, the first event of a window is let
// through and the rest are counted, for a summary line or for the next
// line that is let through.
package throttle
