package tenancy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Certificates for the metadata samples are made here; their private keys are thrown
// away, since parsing metadata only ever sees public certificates.
var certCache sync.Map

// testCert returns a self-signed RSA certificate named cn, valid from notBefore to
// notAfter (relative to testEpoch, the fixtures' clock), made once per test binary.
func testCert(t *testing.T, cn string, notBefore, notAfter time.Duration) *x509.Certificate {
	t.Helper()
	key := fmt.Sprintf("%s|%s|%s", cn, notBefore, notAfter)
	if c, ok := certCache.Load(key); ok {
		return c.(*x509.Certificate)
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    testEpoch.Add(notBefore),
		NotAfter:     testEpoch.Add(notAfter),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	certCache.Store(key, c)
	return c
}

func b64(c *x509.Certificate) string { return base64.StdEncoding.EncodeToString(c.Raw) }

// render fills a metadata template from testdata with the given certificates.
func render(t *testing.T, name string, data map[string]any) []byte {
	t.Helper()
	tmpl, err := template.New(name).Funcs(template.FuncMap{
		// Okta wraps the base64 at 64 columns; the parser must not care.
		"wrap": func(s string) string {
			var b strings.Builder
			for len(s) > 64 {
				b.WriteString(s[:64] + "\n")
				s = s[64:]
			}
			return b.String() + s
		},
	}).ParseFiles("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type certs struct{ current, next, old, other *x509.Certificate }

func sampleCerts(t *testing.T) certs {
	return certs{
		current: testCert(t, "Microsoft Azure Federated SSO Certificate", -24*time.Hour, 3*365*24*time.Hour),
		next:    testCert(t, "Microsoft Azure Federated SSO Certificate (next)", -time.Hour, 4*365*24*time.Hour),
		old:     testCert(t, "Okta 2023", -3*365*24*time.Hour, -24*time.Hour),
		other:   testCert(t, "accounts.accesscontrol.windows.net", -24*time.Hour, 365*24*time.Hour),
	}
}

func entraMetadata(t *testing.T, cs ...*x509.Certificate) []byte {
	var enc []string
	for _, c := range cs {
		enc = append(enc, b64(c))
	}
	return render(t, "entra-federationmetadata.xml.tmpl", map[string]any{
		"Certs": enc, "SignatureCert": b64(sampleCerts(t).other)})
}

func oktaMetadata(t *testing.T, wantSigned, postOnly bool, cs ...*x509.Certificate) []byte {
	var enc []string
	for _, c := range cs {
		enc = append(enc, b64(c))
	}
	return render(t, "okta-metadata.xml.tmpl", map[string]any{"Certs": enc, "WantSigned": wantSigned, "PostOnly": postOnly})
}

func TestParseEntraMetadataWithRollover(t *testing.T) {
	cs := sampleCerts(t)
	md, warnings, err := tenancy.ParseIdPMetadata(entraMetadata(t, cs.current, cs.next))
	if err != nil {
		t.Fatal(err)
	}
	const base = "https://login.microsoftonline.com/b8f3c1d2-5e6a-4f70-8a91-2c3d4e5f6071/saml2"
	if md.EntityID != "https://sts.windows.net/b8f3c1d2-5e6a-4f70-8a91-2c3d4e5f6071/" ||
		md.SSOURL != base || md.SSOBinding != tenancy.SAMLBindingHTTPRedirect ||
		md.SLOURL != base || md.SLOBinding != tenancy.SAMLBindingHTTPRedirect ||
		md.NameIDFormat != tenancy.NameIDFormatUnspecified || md.WantAuthnRequestsSigned {
		t.Fatalf("parsed %+v", md)
	}
	// Both certificates of the rollover, in order; not the one that signed the metadata
	// document, and no duplicates from the WS-Federation role descriptors.
	if len(md.Certificates) != 2 || !md.Certificates[0].Equal(cs.current) || !md.Certificates[1].Equal(cs.next) {
		t.Fatalf("certificates = %v", md.Certificates)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings = %q", warnings)
	}
}

func TestParseOktaMetadata(t *testing.T) {
	cs := sampleCerts(t)
	md, warnings, err := tenancy.ParseIdPMetadata(oktaMetadata(t, true, false, cs.current))
	if err != nil {
		t.Fatal(err)
	}
	const sso = "https://acme.okta.com/app/acme_gatehouse_1/exk8h2m4v9QxYz1aB5d7/sso/saml"
	// HTTP-Redirect is preferred though POST comes first.
	if md.EntityID != "http://www.okta.com/exk8h2m4v9QxYz1aB5d7" || md.SSOURL != sso ||
		md.SSOBinding != tenancy.SAMLBindingHTTPRedirect || md.SLOURL != "" ||
		md.NameIDFormat != tenancy.NameIDFormatUnspecified || !md.WantAuthnRequestsSigned ||
		len(md.Certificates) != 1 || !md.Certificates[0].Equal(cs.current) || len(warnings) != 0 {
		t.Fatalf("parsed %+v, warnings %q", md, warnings)
	}
	md, _, err = tenancy.ParseIdPMetadata(oktaMetadata(t, false, true, cs.current))
	if err != nil || md.SSOBinding != tenancy.SAMLBindingHTTPPost || md.WantAuthnRequestsSigned {
		t.Fatalf("POST-only metadata: %+v, %v", md, err)
	}

	// An expired certificate is accepted, and reported.
	_, warnings, err = tenancy.ParseIdPMetadata(oktaMetadata(t, false, false, cs.old, cs.current))
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], `"CN=Okta 2023"`) || !strings.Contains(warnings[0], "expired on") {
		t.Fatalf("expired + current: warnings %q, %v", warnings, err)
	}
	md, warnings, err = tenancy.ParseIdPMetadata(oktaMetadata(t, false, false, cs.old))
	if err != nil || len(md.Certificates) != 1 || len(warnings) != 2 || !strings.Contains(warnings[1], "no signing certificate is currently valid") {
		t.Fatalf("only expired: warnings %q, %v", warnings, err)
	}
}

func TestParseMetadataRefusals(t *testing.T) {
	cs := sampleCerts(t)
	okta := string(oktaMetadata(t, false, false, cs.current))
	keyInfo := func(c string) string {
		return `<KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>` + c + `</X509Certificate></X509Data></KeyInfo>`
	}
	idp := func(inner string) string {
		return `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com/">` +
			`<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` + inner +
			`</IDPSSODescriptor></EntityDescriptor>`
	}
	sso := `<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example.com/sso"/>`
	signing := `<KeyDescriptor use="signing">` + keyInfo(b64(cs.current)) + `</KeyDescriptor>`
	spOnly := `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example.com/"><SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></EntityDescriptor>`

	for _, tc := range []struct {
		name, doc, want string
	}{
		{"empty", "", "the document is empty"},
		{"not XML", "this is a certificate, not metadata", "no XML elements"},
		{"HTML", "<html><body>Sign in</body></html>", "the root element is html"},
		{"too large", okta + strings.Repeat(" ", tenancy.MaxMetadataBytes), "the limit is 1048576 (1 MiB)"},
		{"billion laughs", `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>` +
			strings.Replace(okta, `<?xml version="1.0" encoding="UTF-8"?>`, "", 1), "DOCTYPE"},
		{"external entity", `<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>`, "DOCTYPE"},
		{"undeclared entity", idp(`&xxe;`), "not well-formed"},
		{"truncated", okta[:len(okta)/2], "not well-formed"},
		{"latin-1", `<?xml version="1.0" encoding="ISO-8859-1"?>` + idp(signing+sso), "not well-formed"},
		{"wrong namespace", `<EntityDescriptor xmlns="urn:example" entityID="x"/>`, "not in the SAML 2.0 metadata namespace"},
		{"SP metadata", spOnly, "has no IDPSSODescriptor"},
		{"no entityID", strings.Replace(idp(signing+sso), ` entityID="https://idp.example.com/"`, "", 1), "no entityID"},
		{"SAML 1.1 only", strings.Replace(idp(signing+sso), "SAML:2.0:protocol", "SAML:1.1:protocol", 1), "does not list SAML 2.0"},
		{"no signing certificate", idp(sso), `no signing certificate (KeyDescriptor use="signing"`},
		{"encryption only", idp(`<KeyDescriptor use="encryption">` + keyInfo(b64(cs.current)) + `</KeyDescriptor>` + sso), "no signing certificate"},
		{"bad base64", idp(`<KeyDescriptor>` + keyInfo("not base64!") + `</KeyDescriptor>` + sso), "not valid base64"},
		{"not a certificate", idp(`<KeyDescriptor>` + keyInfo(base64.StdEncoding.EncodeToString([]byte("hello"))) + `</KeyDescriptor>` + sso), "not an X.509 certificate"},
		{"artifact binding only", idp(signing + `<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="https://idp.example.com/sso"/>`), "no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding"},
		{"javascript SSO URL", idp(signing + `<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="javascript:alert(1)"/>`), "is not an absolute https URL"},
		{"relative SLO URL", idp(signing + sso + `<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="/slo"/>`), "SingleLogoutService Location"},
		{"two IdPs", `<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` +
			idp(signing+sso) + strings.Replace(idp(signing+sso), "idp.example.com/\"", "idp2.example.com/\"", 1) + `</EntitiesDescriptor>`,
			"describes 2 identity providers"},
		{"entities without IdP", `<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">` + spOnly + `</EntitiesDescriptor>`, "has no IDPSSODescriptor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tenancy.ParseIdPMetadata([]byte(tc.doc))
			wantKind(t, err, apperr.KindInvalid, tc.want)
		})
	}

	// An EntitiesDescriptor (nested, too) with exactly one IdP beside an SP is accepted.
	doc := `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"><md:EntitiesDescriptor>` + spOnly +
		`</md:EntitiesDescriptor>` + strings.Replace(okta, `<?xml version="1.0" encoding="UTF-8"?>`, "", 1) + `</md:EntitiesDescriptor>`
	md, _, err := tenancy.ParseIdPMetadata([]byte(doc))
	if err != nil || md.EntityID != "http://www.okta.com/exk8h2m4v9QxYz1aB5d7" {
		t.Fatalf("EntitiesDescriptor: %+v, %v", md, err)
	}
}

func TestSAMLAttributeCandidates(t *testing.T) {
	email, given, family, groups := tenancy.SAMLAttributeMap{}.Candidates()
	if email[0] != "email" || len(email) != 4 || given[0] != "firstName" || family[0] != "lastName" ||
		groups[1] != "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups" {
		t.Fatalf("defaults: %q %q %q %q", email, given, family, groups)
	}
	email, _, _, groups = tenancy.SAMLAttributeMap{Email: "mail", Groups: "roles"}.Candidates()
	if strings.Join(email, ",") != "mail,email,http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress,urn:oid:0.9.2342.19200300.100.1.3" ||
		groups[0] != "roles" || len(groups) != 4 {
		t.Fatalf("configured: %q %q", email, groups)
	}
}

func TestConfigureSAML(t *testing.T) {
	cs := sampleCerts(t)
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFixture(bdb)
		ctx := context.Background()
		acme, _ := f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "acme"})

		_, err := f.svc.SAMLConnection(ctx, acme.ID)
		wantKind(t, err, apperr.KindNotFound, "tenant \"acme\" has no SAML connection: run `gatehouse saml configure")
		_, err = f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{})
		wantKind(t, err, apperr.KindInvalid, "give the IdP's metadata")
		_, err = f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{MetadataXML: []byte("<x/>"), MetadataURL: "https://idp.example.com/md"})
		wantKind(t, err, apperr.KindInvalid, "not both")
		_, err = f.svc.ConfigureSAML(ctx, "no-such-tenant", tenancy.SAMLConfigInput{MetadataXML: entraMetadata(t, cs.current)})
		wantKind(t, err, apperr.KindNotFound, "no such tenant")
		_, err = f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{MetadataXML: []byte(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>`)})
		wantKind(t, err, apperr.KindInvalid, "no IDPSSODescriptor")

		conn, err := f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{MetadataXML: entraMetadata(t, cs.current)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.svc.SAMLConnection(ctx, acme.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.IdPEntityID != "https://sts.windows.net/b8f3c1d2-5e6a-4f70-8a91-2c3d4e5f6071/" ||
			got.SSOBinding != tenancy.SAMLBindingHTTPRedirect || got.SLOURL == "" || got.SignRequests ||
			got.MetadataURL != "" || got.Attributes != (tenancy.SAMLAttributeMap{}) || len(got.Certificates) != 1 ||
			!strings.HasPrefix(got.Certificates[0], "-----BEGIN CERTIFICATE-----\n") ||
			!got.CreatedAt.Equal(f.clock.Now()) || got.SSOURL != conn.SSOURL {
			t.Fatalf("stored connection %+v", got)
		}
		x509s, err := got.X509Certificates()
		if err != nil || len(x509s) != 1 || !x509s[0].Equal(cs.current) {
			t.Fatalf("X509Certificates = %v, %v", x509s, err)
		}
		if w := got.Warnings(f.clock.Now()); len(w) != 0 {
			t.Fatalf("warnings %q", w)
		}

		// Rollover: Entra publishes the next certificate beside the current one.
		f.clock.Advance(time.Minute)
		conn, err = f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{MetadataXML: entraMetadata(t, cs.current, cs.next)})
		if err != nil || len(conn.Certificates) != 2 || conn.CreatedAt.Equal(conn.UpdatedAt) {
			t.Fatalf("rollover: %+v, %v", conn, err)
		}

		// Mapping and signing change without new metadata.
		yes := true
		conn, err = f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{
			Attributes: &tenancy.SAMLAttributeMap{Email: " mail ", Groups: "roles"}, SignRequests: &yes})
		if err != nil || conn.Attributes.Email != "mail" || conn.Attributes.Groups != "roles" || !conn.SignRequests || len(conn.Certificates) != 2 {
			t.Fatalf("mapping change: %+v, %v", conn, err)
		}
		// The same again changes nothing and records nothing.
		if _, err := f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{SignRequests: &yes}); err != nil {
			t.Fatal(err)
		}

		// Okta asks for signed requests: signing cannot be turned off.
		no := false
		_, err = f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{MetadataXML: oktaMetadata(t, true, false, cs.next), SignRequests: &no})
		wantKind(t, err, apperr.KindInvalid, "requires signed AuthnRequests")
		conn, err = f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{MetadataXML: oktaMetadata(t, true, false, cs.next)})
		if err != nil || !conn.SignRequests || !conn.IdPWantsSignedRequests || conn.Attributes.Email != "mail" || conn.SLOURL != "" {
			t.Fatalf("Okta: %+v, %v", conn, err)
		}
		_, err = f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{SignRequests: &no})
		wantKind(t, err, apperr.KindInvalid, "requires signed AuthnRequests")

		events, _, err := f.log.Page(ctx, bdb, acme.ID, audit.Filter{}, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range events {
			actions = append(actions, e.Action)
		}
		if strings.Join(actions, ",") != "tenant.created,saml.connection_changed,saml.connection_changed,saml.connection_changed,saml.connection_changed" {
			t.Fatalf("audit actions = %v", actions)
		}
		fp := func(c *x509.Certificate) string { return tenancy.CertificateFingerprint(c) }
		first, rollover, mapping, okta := events[1], events[2], events[3], events[4]
		if ch := first.Changes["certificates"]; fmt.Sprint(ch.After) != fmt.Sprintf("[%s]", fp(cs.current)) ||
			first.Changes["idpEntityId"].After != "https://sts.windows.net/b8f3c1d2-5e6a-4f70-8a91-2c3d4e5f6071/" ||
			first.Changes["ssoUrl"].After == nil || first.TargetType != "saml_connection" {
			t.Fatalf("first event %+v", first)
		}
		if ch := rollover.Changes["certificates"]; fmt.Sprint(ch.Before) != fmt.Sprintf("[%s]", fp(cs.current)) ||
			fmt.Sprint(ch.After) != fmt.Sprintf("[%s %s]", fp(cs.current), fp(cs.next)) || len(rollover.Changes) != 1 {
			t.Fatalf("rollover event %+v", rollover.Changes)
		}
		if _, ok := mapping.Changes["attributes"]; !ok || len(mapping.Changes) != 2 {
			t.Fatalf("mapping event %+v", mapping.Changes)
		}
		var oktaKeys []string
		for k := range okta.Changes {
			oktaKeys = append(oktaKeys, k)
		}
		slices.Sort(oktaKeys)
		if strings.Join(oktaKeys, ",") != "certificates,idpEntityId,sloUrl,ssoUrl" {
			t.Fatalf("okta event %+v", okta.Changes)
		}
		// Only fingerprints reach the audit log, never certificate or key material.
		raw, _ := json.Marshal(events)
		if bytes.Contains(raw, []byte("BEGIN")) || bytes.Contains(raw, []byte(b64(cs.current)[:40])) {
			t.Fatalf("audit events carry certificate material: %s", raw)
		}
		if !strings.Contains(fp(cs.current), ":") || len(fp(cs.current)) != 95 {
			t.Fatalf("fingerprint %q", fp(cs.current))
		}

		// Another tenant's connection is separate.
		globex, _ := f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "globex"})
		_, err = f.svc.SAMLConnection(ctx, globex.ID)
		wantKind(t, err, apperr.KindNotFound, `tenant "globex" has no SAML connection`)
	})
}

func TestTenantSSOSettings(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFixture(bdb)
		ctx := context.Background()
		acme, err := f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.svc.TenantBySlug(ctx, "acme")
		if err != nil || got.JITProvisioning || got.IdPInitiatedSSO || got.SessionIdleTimeout != 8*time.Hour || got.SessionMaxLifetime != 24*time.Hour {
			t.Fatalf("defaults: %+v, %v", got, err)
		}

		on, idle, max := true, 90*time.Minute, 7*24*time.Hour
		upd, err := f.svc.UpdateSettings(ctx, acme.ID, tenancy.SettingsPatch{JITProvisioning: &on, IdPInitiatedSSO: &on,
			SessionIdleTimeout: &idle, SessionMaxLifetime: &max})
		if err != nil || !upd.JITProvisioning || !upd.IdPInitiatedSSO || upd.SessionIdleTimeout != idle || upd.SessionMaxLifetime != max {
			t.Fatalf("UpdateSettings = %+v, %v", upd, err)
		}
		list, err := f.svc.ListTenants(ctx)
		if err != nil || len(list) != 1 || list[0].SessionIdleTimeout != idle || list[0].SessionMaxLifetime != max || !list[0].JITProvisioning {
			t.Fatalf("ListTenants = %+v, %v", list, err)
		}
		// Stored as whole seconds, on both databases.
		var idleSec, maxSec int64
		if err := bdb.QueryRowContext(ctx, "SELECT session_idle_seconds, session_max_seconds FROM tenants WHERE id = ?", acme.ID).Scan(&idleSec, &maxSec); err != nil {
			t.Fatal(err)
		}
		if idleSec != 5400 || maxSec != 604800 {
			t.Fatalf("stored %d and %d seconds", idleSec, maxSec)
		}
		latest, _ := f.log.Latest(ctx, bdb, acme.ID)
		events, _, _ := f.log.Page(ctx, bdb, acme.ID, audit.Filter{}, latest-1, 1)
		if ch := events[0].Changes; events[0].Action != "tenant.settings_changed" || ch["jitProvisioning"].After != true ||
			ch["idpInitiatedSso"].After != true || ch["sessionIdleTimeout"].Before != "8h0m0s" || ch["sessionIdleTimeout"].After != "1h30m0s" ||
			ch["sessionMaxLifetime"].After != "168h0m0s" {
			t.Fatalf("audit %+v", events[0])
		}

		d := func(s string) *time.Duration { v, _ := time.ParseDuration(s); return &v }
		for _, tc := range []struct {
			p    tenancy.SettingsPatch
			want string
		}{
			{tenancy.SettingsPatch{SessionIdleTimeout: d("1m")}, "session idle timeout 1m0s is out of range"},
			{tenancy.SettingsPatch{SessionIdleTimeout: d("721h")}, "session idle timeout 721h0m0s is out of range"},
			{tenancy.SettingsPatch{SessionMaxLifetime: d("2161h")}, "maximum lifetime 2161h0m0s is out of range"},
			{tenancy.SettingsPatch{SessionMaxLifetime: d("4m59s")}, "out of range"},
			{tenancy.SettingsPatch{SessionMaxLifetime: d("1h")}, "longer than the maximum session lifetime"},
			{tenancy.SettingsPatch{SessionIdleTimeout: d("30h"), SessionMaxLifetime: d("24h")}, "must not exceed"},
		} {
			_, err := f.svc.UpdateSettings(ctx, acme.ID, tc.p)
			wantKind(t, err, apperr.KindInvalid, tc.want)
		}
		// Both bounds at once, and back to the defaults.
		upd, err = f.svc.UpdateSettings(ctx, acme.ID, tenancy.SettingsPatch{SessionIdleTimeout: d("720h"), SessionMaxLifetime: d("2160h")})
		if err != nil || upd.SessionIdleTimeout != 720*time.Hour {
			t.Fatalf("bounds: %+v, %v", upd, err)
		}
		off := false
		upd, err = f.svc.UpdateSettings(ctx, acme.ID, tenancy.SettingsPatch{JITProvisioning: &off, IdPInitiatedSSO: &off,
			SessionIdleTimeout: d("8h"), SessionMaxLifetime: d("24h")})
		if err != nil || upd.JITProvisioning || upd.IdPInitiatedSSO || upd.SessionMaxLifetime != 24*time.Hour {
			t.Fatalf("reset: %+v, %v", upd, err)
		}
	})
}

func TestMetadataURLFetch(t *testing.T) {
	cs := sampleCerts(t)
	okta := oktaMetadata(t, false, false, cs.current)
	mux := http.NewServeMux()
	mux.HandleFunc("/metadata", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(okta)
	})
	mux.HandleFunc("/redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		n := 0
		fmt.Sscan(r.PathValue("n"), &n)
		if n == 0 {
			http.Redirect(w, r, "/metadata", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/redirect/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte(" "), tenancy.MaxMetadataBytes+1))
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html><body>Please sign in</body></html>"))
	})
	plain := httptest.NewServer(mux)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(mux)
	defer tlsSrv.Close()
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) { metadataURLFetch(t, bdb, plain, tlsSrv) })
}

func metadataURLFetch(t *testing.T, bdb *bun.DB, plain, tlsSrv *httptest.Server) {
	f := newFixture(bdb)
	ctx := context.Background()
	acme, _ := f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "acme"})
	configure := func(url string) (tenancy.SAMLConnection, error) {
		return f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{MetadataURL: url})
	}

	// By default: https only, and never to a non-public address, checked on the address
	// actually dialled (so a name that resolves to one is refused too).
	port := tlsSrv.URL[strings.LastIndexByte(tlsSrv.URL, ':')+1:]
	for _, tc := range []struct{ url, want string }{
		{plain.URL + "/metadata", `the URL scheme is "http"; metadata URLs must use https`},
		{tlsSrv.URL + "/metadata", "resolves to 127.0.0.1, a loopback address; metadata is only fetched from public internet addresses"},
		{"https://localhost:" + port + "/metadata", "a loopback address"},
		{"https://10.1.2.3/md", "resolves to 10.1.2.3, a private address"},
		{"https://172.16.0.1/md", "a private address"},
		{"https://192.168.1.1/md", "a private address"},
		{"https://169.254.169.254/latest/meta-data", "a link-local address"},
		{"https://[fe80::1]/md", "a link-local address"},
		{"https://[fd00:ec2::254]/md", "a private address"},
		{"https://[::1]/md", "a loopback address"},
		{"https://[::ffff:127.0.0.1]/md", "a loopback address"},
		{"https://[64:ff9b::a9fe:a9fe]/md", "a link-local address"},
		{"https://[64:ff9b:1::a00:1]/md", "a local-use NAT64 address"},
		{"https://[2002:a00:1::1]/md", "a 6to4 address"},
		{"https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/md", "a Teredo address"},
		{"https://0.0.0.0/md", "an unspecified address"},
		{"https://224.0.0.1/md", "a multicast or broadcast address"},
		{"https://100.64.0.1/md", "a shared (carrier-grade NAT) address"},
		{"ftp://idp.example.com/md", `the URL scheme is "ftp"`},
		{"https://admin:secret@idp.example.com/md", "carries a user name or password"},
		{"/relative", "not an absolute https URL"},
	} {
		_, err := configure(tc.url)
		wantKind(t, err, apperr.KindInvalid, tc.want)
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("error shows the URL's password: %v", err)
		}
	}

	// Development mode: http and loopback allowed, other limits still hold.
	f.svc.AllowPrivateMetadataURLs(true)
	conn, err := configure(plain.URL + "/redirect/2") // three redirects in all
	if err != nil || conn.MetadataURL != plain.URL+"/redirect/2" || conn.IdPEntityID != "http://www.okta.com/exk8h2m4v9QxYz1aB5d7" {
		t.Fatalf("dev mode fetch: %+v, %v", conn, err)
	}
	for _, tc := range []struct{ path, want string }{
		{"/redirect/3", "it redirected more than 3 times"},
		{"/huge", "the document is larger than 1 MiB"},
		{"/missing", "it answered HTTP 404"},
		{"/html", "but the IdP metadata is not usable: the root element is html"},
	} {
		_, err := configure(plain.URL + tc.path)
		wantKind(t, err, apperr.KindInvalid, tc.want)
	}
	// Back to the default, loopback is refused again.
	f.svc.AllowPrivateMetadataURLs(false)
	_, err = configure(plain.URL + "/metadata")
	wantKind(t, err, apperr.KindInvalid, "must use https")
}

// In the strict (production) mode a redirect is held to the same rules as the URL an
// admin gives: it may not leave https, and the address it leads to is checked when it
// is dialled. A loopback https server stands in for a public IdP here (127.0.0.1 is
// treated as public); the internal host it redirects to is 127.0.0.2.
func TestMetadataURLFetchRedirectsStrict(t *testing.T) {
	okta := oktaMetadata(t, false, false, sampleCerts(t).current)
	serve := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(okta)
	}
	plain := httptest.NewServer(http.HandlerFunc(serve)) // on 127.0.0.1, treated as public
	defer plain.Close()
	internal := httptest.NewUnstartedServer(http.HandlerFunc(serve))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("cannot listen on 127.0.0.2 (the internal host): %v", err)
	}
	internal.Listener.Close()
	internal.Listener = ln
	internal.StartTLS()
	defer internal.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("/metadata", serve)
	mux.HandleFunc("/to-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/metadata", http.StatusFound)
	})
	mux.HandleFunc("/to-internal", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+"/metadata", http.StatusFound)
	})
	public := httptest.NewTLSServer(mux)
	defer public.Close()

	publicIP := netip.MustParseAddr("127.0.0.1")
	classify := func(ip netip.Addr) string {
		if ip.Unmap() == publicIP {
			return ""
		}
		return tenancy.NonPublicKind(ip)
	}
	roots := x509.NewCertPool()
	roots.AddCert(public.Certificate())
	roots.AddCert(internal.Certificate())

	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFixture(bdb)
		f.svc.UseStrictMetadataFetcher(classify, roots)
		ctx := context.Background()
		acme, err := f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		configure := func(url string) error {
			_, err := f.svc.ConfigureSAML(ctx, acme.ID, tenancy.SAMLConfigInput{MetadataURL: url})
			return err
		}
		if err := configure(public.URL + "/metadata"); err != nil {
			t.Fatalf("control: fetching from the stand-in public host: %v", err)
		}
		wantKind(t, configure(public.URL+"/to-http"), apperr.KindInvalid, `the URL scheme is "http"; metadata URLs must use https`)
		wantKind(t, configure(public.URL+"/to-internal"), apperr.KindInvalid, "its host resolves to 127.0.0.2, a loopback address")
	})
}
