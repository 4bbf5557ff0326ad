package sso_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// When the NameID is not a userName (an opaque persistent ID, as Okta and Entra can
// send), the person is found by the email attribute: the configured attribute name
// first, then the common ones. An email shared by several users signs in none of them.
func TestSignInByMappedEmail(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		ctx := context.Background()
		e, idp := crafted(t, bdb)
		for _, name := range []string{"one@acme.test", "two@acme.test"} {
			if _, err := e.identity.CreateUser(ctx, e.tenant.ID, identity.User{UserName: name, Active: true,
				Values: []identity.Value{{Attr: identity.AttrEmails, Value: "shared@acme.test", Primary: true}}}); err != nil {
				t.Fatal(err)
			}
		}
		signIn := func(attrs map[string][]string) (int, string, string) {
			b := browser(t)
			o := e.opts(e.startLogin(b, "/"))
			o.NameID, o.NameIDFormat, o.Attributes = "00u8f3k2pQ7Zr9", samltest.NameIDFormatPersistent, attrs
			resp, body := e.post(b, idp.Response(t, o), "")
			if resp.StatusCode != http.StatusSeeOther {
				return resp.StatusCode, body, ""
			}
			var who struct{ User struct{ UserName string } }
			e.getJSON("/auth/session", e.sessionToken(b), &who)
			return resp.StatusCode, body, who.User.UserName
		}

		if st, body, who := signIn(map[string][]string{"email": {"ada@acme.test"}}); st != http.StatusSeeOther || who != "ada@acme.test" {
			t.Fatalf("opaque NameID with an email attribute: %d as %q %.300s", st, who, body)
		}
		if st, body, _ := signIn(map[string][]string{"firstName": {"Ada"}}); st != http.StatusForbidden || !strings.Contains(body, "no account for 00u8f3k2pQ7Zr9") {
			t.Fatalf("opaque NameID without an email: %d %.300s", st, body)
		}

		// A tenant-specific attribute name wins over the common ones.
		attrs := tenancy.SAMLAttributeMap{Email: "corpEmail"}
		if _, err := e.tenancy.ConfigureSAML(ctx, e.tenant.ID, tenancy.SAMLConfigInput{Attributes: &attrs}); err != nil {
			t.Fatal(err)
		}
		if st, body, who := signIn(map[string][]string{"corpEmail": {"ada@acme.test"}, "email": {"admin@acme.com"}}); st != http.StatusSeeOther || who != "ada@acme.test" {
			t.Fatalf("configured email attribute: %d as %q %.300s", st, who, body)
		}

		if st, body, _ := signIn(map[string][]string{"corpEmail": {"shared@acme.test"}}); st != http.StatusForbidden || !strings.Contains(body, "several users") {
			t.Fatalf("an email two users share: %d %.300s", st, body)
		}
	})
}
