// Package sanitize makes bytes received from a network peer safe to print on
// a terminal or embed in a log record.
//
// A server that prints what clients send is a known attack path: terminal
// escape sequences (xterm OSC 50, the iTerm2 and git CVEs), a single-byte C1
// CSI (U+009B), a carriage return that overwrites the start of the line,
// bidirectional overrides that reorder what the reader sees (CVE-2021-42574,
// "Trojan Source"), and line separators that forge a second record. Append
// escapes all of them, so one message is always one output line and the
// output is always valid UTF-8.
package sanitize
