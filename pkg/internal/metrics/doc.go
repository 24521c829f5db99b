// Package metrics holds seclisten's Prometheus metrics, on a registry of
// its own, and serves them with /healthz and /readyz.
//
// Label sets are bounded: reasons and verdicts come from fixed lists
// (anything else is "other"), and certificate names from the configured
// certificates; never a label per client address.
package metrics
