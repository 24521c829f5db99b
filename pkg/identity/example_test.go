package identity_test

import (
	"fmt"
	"log"

	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/pki"
)

// How a client certificate names its holder, and an allowlist that serves
// it.
func ExampleFromCertificate() {
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		log.Fatal(err)
	}
	c, err := ca.IssueClient(pki.ClientOptions{CommonName: "alice", URIs: []string{"spiffe://example.org/alice"}})
	if err != nil {
		log.Fatal(err)
	}
	id := identity.FromCertificate(c.Certificate)
	fmt.Println(id.Name, id.SANs())
	fmt.Println(identity.Allowlist{URI: []string{"spiffe://example.org/alice"}}.Check(id))
	// Output:
	// CN=alice [URI:spiffe://example.org/alice]
	// <nil>
}
