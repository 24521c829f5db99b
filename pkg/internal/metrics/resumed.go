package metrics

import "github.com/prometheus/client_golang/prometheus"

// TicketOwn and TicketOtherReplica are the values of the ticket label of
// seclisten_handshake_resumptions_total: a session resumed with this
// replica's own ticket, or with one another replica of the fleet issued
// (shared ticket keys, --redis).
const (
	TicketOwn          = "own"
	TicketOtherReplica = "other-replica"
)

func (m *Metrics) registerResumptions() {
	m.resumptions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seclisten_handshake_resumptions_total",
		Help: "Handshakes resumed from a session ticket, by whose ticket: own, or other-replica (issued by another replica of the fleet)."},
		[]string{"ticket"})
	m.reg.MustRegister(m.resumptions)
	for _, t := range []string{TicketOwn, TicketOtherReplica} {
		m.resumptions.WithLabelValues(t)
	}
}

// Resumed counts a resumed handshake; ticket is TicketOwn or
// TicketOtherReplica.
func (m *Metrics) Resumed(ticket string) { m.resumptions.WithLabelValues(ticket).Inc() }
