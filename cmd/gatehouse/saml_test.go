package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// oktaLikeMetadata is IdP metadata shaped like Okta's, around a fresh self-signed
// certificate valid until notAfter (its key is thrown away).
func oktaLikeMetadata(t *testing.T, cn string, notAfter time.Time) (string, *x509.Certificate) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-4 * 365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return `<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor entityID="http://www.okta.com/exk8h2m4v9QxYz1aB5d7" xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">` +
		`<md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
		`<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>` +
		base64.StdEncoding.EncodeToString(der) +
		`</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
		`<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>` +
		`<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://acme.okta.com/app/acme_gatehouse_1/exk8h2m4v9QxYz1aB5d7/sso/saml"/>` +
		`<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://acme.okta.com/app/acme_gatehouse_1/exk8h2m4v9QxYz1aB5d7/sso/saml"/>` +
		`</md:IDPSSODescriptor></md:EntityDescriptor>`, cert
}

func TestSAMLCommands(t *testing.T) {
	current, currentCert := oktaLikeMetadata(t, "acme.okta.com", time.Now().Add(3*365*24*time.Hour))
	expired, _ := oktaLikeMetadata(t, "acme.okta.com 2023", time.Now().Add(-24*time.Hour))
	dir := t.TempDir()
	currentFile, expiredFile := filepath.Join(dir, "okta.xml"), filepath.Join(dir, "expired.xml")
	os.WriteFile(currentFile, []byte(current), 0o600)
	os.WriteFile(expiredFile, []byte(expired), 0o600)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write([]byte(current))
	}))
	defer idp.Close()

	for _, dbCase := range dbURLs {
		t.Run(dbCase.name, func(t *testing.T) {
			dbURL := dbCase.url(t)
			getenv := envOf("GATEHOUSE_DATABASE_URL", dbURL, "GATEHOUSE_PUBLIC_URL", "https://id.example.com")
			wantErr := func(contains string, args ...string) {
				t.Helper()
				_, err := cli(t, getenv, args...)
				if err == nil || !strings.Contains(err.Error(), contains) {
					t.Fatalf("gatehouse %s: want error containing %q, got %v", strings.Join(args, " "), contains, err)
				}
			}
			// Column widths depend on the longest label; compare with runs of spaces as one.
			spaces := regexp.MustCompile(` +`)
			wantOut := func(out string, wants ...string) {
				t.Helper()
				for _, w := range wants {
					if !strings.Contains(spaces.ReplaceAllString(out, " "), spaces.ReplaceAllString(w, " ")) {
						t.Fatalf("output lacks %q:\n%s", w, out)
					}
				}
			}
			mustCLI(t, getenv, "tenant", "create", "--slug", "acme")

			// Before any connection, show gives the SP values the IdP application needs.
			out := mustCLI(t, getenv, "saml", "show", "--tenant", "acme")
			wantOut(out, "Entity ID (Identifier, Audience URI)     https://id.example.com/saml/acme\n",
				"ACS URL (Reply URL, Single sign-on URL)  https://id.example.com/saml/acme/acs\n",
				"SP metadata                              https://id.example.com/saml/acme/metadata\n",
				"Sign-in URL                              https://id.example.com/saml/acme/login\n",
				"Logout URL (Single Logout)               https://id.example.com/saml/acme/slo\n",
				"Identity provider: not configured yet", "gatehouse saml configure --tenant acme",
				"JIT provisioning       off", "session idle timeout   8h\n", "session max lifetime   24h\n")

			wantErr(`unknown saml action "delete"`, "saml", "delete", "--tenant", "acme")
			wantErr("--tenant is required", "saml", "show")
			wantErr("usage: gatehouse saml configure --tenant acme (--metadata-file", "saml", "configure", "--tenant", "acme")
			wantErr("cannot read the metadata file", "saml", "configure", "--tenant", "acme", "--metadata-file", filepath.Join(dir, "nope.xml"))
			wantErr("the root element is html", "saml", "configure", "--tenant", "acme", "--metadata-file", writeFile(t, dir, "page.html", "<html/>"))
			wantErr("not both", "saml", "configure", "--tenant", "acme", "--metadata-file", currentFile, "--metadata-url", idp.URL)
			// A metadata URL on a loopback address or over http is refused unless the
			// development switch is on.
			wantErr("must use https", "saml", "configure", "--tenant", "acme", "--metadata-url", idp.URL)
			wantErr("a loopback address", "saml", "configure", "--tenant", "acme", "--metadata-url", "https://"+strings.TrimPrefix(idp.URL, "http://"))

			// An expired certificate is accepted, flagged and warned about.
			out = mustCLI(t, getenv, "saml", "configure", "--tenant", "acme", "--metadata-file", expiredFile)
			wantOut(out, "SAML connection of acme saved.", "EXPIRED", "Warnings:", "expired on", "no signing certificate is currently valid")

			out = mustCLI(t, getenv, "saml", "configure", "--tenant", "acme", "--metadata-file", currentFile,
				"--email-attr", "mail", "--groups-attr", "roles")
			wantOut(out, "entity ID        http://www.okta.com/exk8h2m4v9QxYz1aB5d7",
				"SSO URL          https://acme.okta.com/app/acme_gatehouse_1/exk8h2m4v9QxYz1aB5d7/sso/saml (HTTP-Redirect)",
				"SLO URL          (none)", "NameID format    urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
				"sign requests    no", "metadata         uploaded", "certificate 1    CN=acme.okta.com\n",
				"SHA-256 "+tenancy.CertificateFingerprint(currentCert), "email attribute  mail, email, ",
				"groups attribute  roles, groups", "(configured;", "given name attribute  firstName")
			if strings.Contains(out, "EXPIRED") || strings.Contains(out, "Warnings:") {
				t.Fatalf("current certificate flagged:\n%s", out)
			}

			// Only the flags given change; the rest of the mapping stays.
			out = mustCLI(t, getenv, "saml", "configure", "--tenant", "acme", "--groups-attr", "", "--sign-requests")
			wantOut(out, "email attribute  mail, email", "groups attribute  groups, http://schemas.microsoft.com/ws/2008/06/identity/claims/groups, memberOf (default;", "sign requests    yes")
			wantErr("must be true or false", "saml", "configure", "--tenant", "acme", "--sign-requests=maybe")

			// Tenant SSO settings.
			out = mustCLI(t, getenv, "tenant", "update", "--tenant", "acme", "--jit=true", "--idp-initiated-sso=false",
				"--session-idle", "90m", "--session-max", "168h")
			wantOut(out, "JIT provisioning   on\n", "IdP-initiated SSO  off\n", "session idle       1h30m\n", "session lifetime   168h\n")
			out = mustCLI(t, getenv, "tenant", "show", "acme")
			wantOut(out, "JIT provisioning   on\n", "session lifetime   168h\n")
			wantErr("is longer than the maximum session lifetime", "tenant", "update", "acme", "--session-idle", "200h")
			wantErr("out of range", "tenant", "update", "acme", "--session-max", "1m")
			wantErr(`must be a duration`, "tenant", "update", "acme", "--session-idle", "8 hours")
			out = mustCLI(t, getenv, "saml", "show", "--tenant", "acme")
			wantOut(out, "entity ID        http://www.okta.com/exk8h2m4v9QxYz1aB5d7", "JIT provisioning       on", "session idle timeout   1h30m")

			// Development mode fetches from the local IdP.
			dev := envOf("GATEHOUSE_DATABASE_URL", dbURL, "GATEHOUSE_PUBLIC_URL", "https://id.example.com",
				"GATEHOUSE_SAML_METADATA_ALLOW_PRIVATE", "true")
			out = mustCLI(t, dev, "saml", "configure", "--tenant", "acme", "--metadata-url", idp.URL+"/app/metadata")
			wantOut(out, "metadata         fetched from "+idp.URL+"/app/metadata", "sign requests    yes", "email attribute  mail")
		})
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
