package sso_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// During an IdP certificate rollover the metadata lists two certificates and the IdP
// signs with either. A response signed by either is accepted, whether or not its
// signature carries KeyInfo (goxmldsig alone refuses a signature without KeyInfo as
// soon as it trusts two certificates); one signed by a third key is refused either
// way.
func TestCertificateRollover(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb, memoryCache(t))
		old := samltest.NewIdP(t, "https://idp.acme.test/entity")
		next := samltest.NewIdP(t, old.EntityID)
		old.ExtraCerts = append(old.ExtraCerts, next.Cert)
		e.configure(old.MetadataXML())
		e.addUser("ada@acme.test", true)
		conn, err := e.tenancy.SAMLConnection(t.Context(), e.tenant.ID)
		if err != nil || len(conn.Certificates) != 2 {
			t.Fatalf("connection has %d certificates (%v); want the current and the next", len(conn.Certificates), err)
		}
		stranger := samltest.NewIdP(t, old.EntityID)

		for _, tc := range []struct {
			name   string
			signer *samltest.IdP
			ok     bool
		}{
			{"first certificate", old, true},
			{"second certificate", next, true},
			{"unlisted certificate", stranger, false},
		} {
			for _, noKeyInfo := range []bool{false, true} {
				name := tc.name + ", with KeyInfo"
				if noKeyInfo {
					name = tc.name + ", without KeyInfo"
				}
				t.Run(name, func(t *testing.T) {
					b := browser(t)
					o := e.opts(e.startLogin(b, "/in"))
					o.SignWith, o.OmitKeyInfo = tc.signer, noKeyInfo
					resp, body := e.post(b, old.Response(t, o), "")
					if !tc.ok {
						if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "signature does not verify") {
							t.Fatalf("want a refusal naming the signature, got %s: %s", resp.Status, body[strings.Index(body, "<body>"):])
						}
						return
					}
					if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/in" {
						t.Fatalf("want sign-in, got %s: %s", resp.Status, body[strings.Index(body, "<body>"):])
					}
					if e.whoami(b) != http.StatusOK {
						t.Fatal("signed in but the session does not authenticate")
					}
				})
			}
		}
	})
}
