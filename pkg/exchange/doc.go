// Package exchange runs the read-print-reply loop of one connection over an
// io.ReadWriter: it frames newline-delimited messages with a hard size limit,
// hands each one to an Observer (which prints it) and writes the reply.
//
// It knows nothing of TLS, addresses, deadlines or rate limits: the caller
// wraps the connection with those before handing it over.
package exchange
