package setting

import (
	"fmt"
	"strings"
)

// Error is a sentence about settings, such as "`cert` and `key` go
// together: give both or neither". Error shows each key between backquotes;
// Render names it as the caller says.
type Error struct {
	format string
	args   []any
}

// Errorf returns an Error. format is fmt.Errorf's, with each setting named
// by its key between backquotes; backquotes mean nothing else there. The
// args, which may hold anything a user typed, are formatted as fmt.Errorf
// does, and the Error wraps what a %w verb wraps.
func Errorf(format string, args ...any) *Error {
	return &Error{format: format, args: args}
}

// Error is the sentence with each key between backquotes.
func (e *Error) Error() string {
	return e.Render(func(key string) string { return "`" + key + "`" })
}

// Render is the sentence with each key replaced by name(key).
func (e *Error) Render(name func(key string) string) string {
	var b strings.Builder
	for i, part := range strings.Split(e.format, "`") {
		if i%2 == 0 {
			b.WriteString(part)
		} else {
			b.WriteString(strings.ReplaceAll(name(part), "%", "%%"))
		}
	}
	return fmt.Errorf(b.String(), e.args...).Error()
}

// Keys lists the keys the sentence names, in order.
func (e *Error) Keys() []string {
	var keys []string
	for i, part := range strings.Split(e.format, "`") {
		if i%2 == 1 {
			keys = append(keys, part)
		}
	}
	return keys
}

// Unwrap returns what the %w verbs of the format wrap.
func (e *Error) Unwrap() []error {
	switch err := fmt.Errorf(e.format, e.args...).(type) {
	case interface{ Unwrap() error }:
		return []error{err.Unwrap()}
	case interface{ Unwrap() []error }:
		return err.Unwrap()
	}
	return nil
}
