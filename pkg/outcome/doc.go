// Package outcome is seclisten's vocabulary: every way a connection can be
// refused, fail its handshake, be judged or end is a Code with one
// spelling. Logs, --json events, the --report line, metric labels and the
// README all use that spelling, and nothing else declares it.
//
// A Code knows its Kind and a short text in plain words; what governs it
// (a flag, say) is for the program that configured it to say.
package outcome
