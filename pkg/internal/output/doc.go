// Package output prints what clients send, on stdout, through one locked
// writer: in text mode one line per message prefixed by the peer, in JSON mode
// one object per event (connect, message, reply, close). Lines are written
// at once, and under load many in one write (Printer).
//
// Every byte that came from a client, and every peer name, passes through
// package sanitize first, in both modes: a JSON encoder alone leaves C1
// controls and bidirectional overrides raw, and those are as dangerous on a
// terminal that shows the JSON as they are in text.
package output
