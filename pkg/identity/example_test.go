package identity_test

import (
	"errors"
	"fmt"

	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/pki"
)

// A server names a client by its verified certificate
// (tls.ConnectionState.VerifiedChains[0][0]) and checks it against its
// allowlists.
func ExampleAllowlist_Check() {
	ca, _ := pki.NewCA(pki.CAOptions{})
	bob, _ := ca.IssueClient(pki.ClientOptions{CommonName: "bob", URIs: []string{"spiffe://example.org/bob"}})
	id := identity.FromCertificate(bob.Certificate)
	fmt.Println(id.Name)

	allow := identity.Allowlist{CN: []string{"alice"}}
	err := allow.Check(id)
	var na *identity.NotAllowedError
	if errors.As(err, &na) {
		fmt.Printf("refused by the %s list: %v\n", na.List, err)
	}
	// Output:
	// CN=bob
	// refused by the CN list: CN=bob is not in the allowed common names
}
