// Package slogtext is a log/slog handler that writes exactly what
// slog.NewTextHandler writes, and lets a value supply its own rendering.
//
// slog's text handler renders an encoding.TextMarshaler by calling
// MarshalText and quoting the result (strconv.AppendQuote, rune by rune)
// on every record. A value that appears in many records, such as the
// list of cipher suites a kind of client offers, can keep its rendering
// and hand it over as it is (Quoted); a value that stands for many
// attributes, such as a connection's facts, writes them all itself
// (Attrs), and slog's handlers inline it. Records with anything this handler
// does not write itself (groups, times, errors, other values) are passed
// whole to slog's own text handler, which shares the writer and its lock,
// so every line is slog's format either way.
package slogtext
