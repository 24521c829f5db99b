// Package gcfloor keeps the garbage collector's heap goal from falling
// below a floor while the live heap is small.
//
// Go's collector aims to let the heap grow by GOGC percent of what is live
// before it collects again, but never below 4 MiB (scaled by GOGC). A
// server whose live heap is a megabyte or two then collects every 2–3 MiB
// of garbage: under a stream of TLS handshakes, each leaving some 45 KiB,
// that is a cycle every 60 or so, and each cycle marks the whole live heap,
// every goroutine's stack and the binary's globals again. The floor raises
// GOGC while the live heap is small, so that the goal is at least the
// floor, and gives it back as the heap grows: from a live heap of half the
// floor on, GOGC is the base it started from, and memory at scale is what
// it would have been without it.
//
// The GOMEMLIMIT soft limit, if set, still bounds the heap: the runtime
// collects to stay under it whatever GOGC is.
package gcfloor
