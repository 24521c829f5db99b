// Package listener runs the accept loop and the life of each connection:
// the global concurrency cap, accept-error backoff, idle and write deadlines,
// panic recovery, a graceful drain on shutdown and a lingering close.
//
// It knows no certificate, message format or client identity: a Handler gets
// each accepted *Conn and does the rest of the pipeline.
//
// The shape follows net/http's Server: Serve returns ErrServerClosed after
// Shutdown; Shutdown stops accepting, lets handlers finish until its context
// ends, then closes what is left.
package listener
