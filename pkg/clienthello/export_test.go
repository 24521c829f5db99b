package clienthello

import "crypto/tls"

// Fresh is New with an empty table of kinds: the description made from h
// alone. It empties the table after too.
func Fresh(h *tls.ClientHelloInfo) *Hello {
	kinds.mu.Lock()
	clear(kinds.m)
	kinds.mu.Unlock()
	defer func() {
		kinds.mu.Lock()
		clear(kinds.m)
		kinds.mu.Unlock()
	}()
	return New(h)
}

// Kinds is the number of kinds in the table.
func Kinds() int {
	kinds.mu.Lock()
	defer kinds.mu.Unlock()
	return len(kinds.m)
}
