package acme

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/caddyserver/certmagic"
)

// Restore writes back to the storage the certificates of Options.Domains
// that this replica serves from memory and the storage no longer has (a
// shared store, Redis, restarted empty or flushed), so the fleet loads
// them again instead of ordering new ones, once per replica. It writes
// only what is missing, in certmagic's layout (key, certificate, then
// metadata), and returns the domains it restored.
func (m *Manager) Restore(ctx context.Context) ([]string, error) {
	issuerKey := m.issuer.IssuerKey()
	var restored []string
	for _, domain := range m.opts.Domains {
		if m.cfg.Storage.Exists(ctx, certmagic.StorageKeys.SiteCert(issuerKey, domain)) {
			continue
		}
		cert, ok := m.cached(domain)
		if !ok {
			continue
		}
		var chain []byte
		for _, der := range cert.Certificate.Certificate {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		key, err := certmagic.PEMEncodePrivateKey(cert.PrivateKey)
		if err != nil {
			return restored, fmt.Errorf("restore %s: %w", domain, err)
		}
		meta, err := json.MarshalIndent(certmagic.CertificateResource{SANs: cert.Names}, "", "\t")
		if err != nil {
			return restored, fmt.Errorf("restore %s: %w", domain, err)
		}
		for _, kv := range []struct {
			key   string
			value []byte
		}{
			{certmagic.StorageKeys.SitePrivateKey(issuerKey, domain), key},
			{certmagic.StorageKeys.SiteCert(issuerKey, domain), chain},
			{certmagic.StorageKeys.SiteMeta(issuerKey, domain), meta},
		} {
			if err := m.cfg.Storage.Store(ctx, kv.key, kv.value); err != nil {
				return restored, fmt.Errorf("restore %s: %w", domain, err)
			}
		}
		m.log.Warn("ACME certificate was missing from the shared storage: restored from memory",
			"domain", domain, "serial", "0x"+cert.Leaf.SerialNumber.Text(16))
		restored = append(restored, domain)
	}
	return restored, nil
}

// cached is the unexpired certificate of domain in memory, if any.
func (m *Manager) cached(domain string) (certmagic.Certificate, bool) {
	for _, c := range m.cache.AllMatchingCertificates(domain) {
		if c.Leaf != nil && !c.Expired() && c.PrivateKey != nil {
			return c, true
		}
	}
	return certmagic.Certificate{}, false
}
