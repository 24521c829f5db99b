package tlsconf

// SetWatchLookHook makes Watch call f after each look at its files, until
// the returned function is called. Set it before starting Watch, and reset
// it only after Watch has returned.
func SetWatchLookHook(f func()) (reset func()) {
	testHookWatchLooked = f
	return func() { testHookWatchLooked = nil }
}
