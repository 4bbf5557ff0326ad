package samltest

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// WrappingCase is one SAML Response from the test data of github.com/crewjam/saml or
// github.com/russellhaering/gosaml2, with everything an SP needs to judge it as of
// the moment it was issued: configure the SP with CertPEM as the IdP's certificate,
// IdPEntityID as the IdP's issuer, Audience as its own entity ID, ACS as its ACS URL,
// and its clock at At, then post ResponseB64 as SAMLResponse.
//
// A Legit case is an untouched document a correct SP accepts under exactly that
// configuration; an attack case (Legit false) must be refused. Each attack names the
// legit document it was made from in Of, so a negative test can first prove its SP
// configuration accepts the original — otherwise "refused" may only mean "misconfigured".
type WrappingCase struct {
	Name   string
	Source string // module@version and file the document comes from
	Attack string // what the document does; "" for a legit one
	Of     string // Name of the legit document an attack was made from ("" if none shipped)
	Legit  bool

	ResponseB64 string
	CertPEM     string
	IdPEntityID string
	Audience    string // SP entity ID the assertion is restricted to
	ACS         string // Destination / Recipient
	// InResponseTo is the AuthnRequest ID the document answers ("" = unsolicited). An
	// SP that checks it against its own request store must be made to expect it.
	InResponseTo string
	At           time.Time
	// SignatureAlgorithm is the document's (first) SignatureMethod. Most of these
	// documents are RSA-SHA1: an SP that refuses SHA-1 refuses their legit versions
	// too, and then the matching attacks prove nothing.
	SignatureAlgorithm string
}

// Module versions whose test data SignatureWrappingCases reads; go.mod pins the same.
const (
	crewjamModule = "github.com/crewjam/saml"
	gosaml2Module = "github.com/russellhaering/gosaml2"
)

// SignatureWrappingCases loads the signature-wrapping (XSW) and tampered Responses that
// github.com/crewjam/saml v0.5.1 and github.com/russellhaering/gosaml2 v0.12.0 ship
// in their test data, plus the legit documents they were made from. The files are read
// from the Go module cache (located with `go list -m`, which needs the go command on
// PATH; `go mod download` or any build fills the cache).
//
// Documents from three real IdPs:
//   - "crewjam/onelogin": a OneLogin response, signed Response, RSA-SHA1 (legit);
//     xsw1 and xsw2 are made from it.
//   - "crewjam/signed-assertion": a OneLogin-toolkit response with a signed Assertion,
//     RSA-SHA1 (legit); xsw3 to xsw9 are made from it.
//   - "crewjam/google": a Google Workspace response, signed Response, RSA-SHA256
//     (legit); comment-injection is made from it.
//   - "gosaml2/onelogin-01", "-03", "-04": OneLogin test responses signed on the
//     Response, the Assertion, and both (legit); the tampered-* cases are made from them.
func SignatureWrappingCases(t testing.TB) []WrappingCase {
	t.Helper()
	cj := moduleDir(t, crewjamModule)
	gs := moduleDir(t, gosaml2Module)
	var out []WrappingCase

	// crewjam/saml: service_provider_test.go TestSPCanHandleOneloginResponse and
	// TestXswPermutation{One,Two}IsRejected.
	onelogin := WrappingCase{
		CertPEM:      idpMetadataCert(t, cj, "testdata/TestSPCanHandleOneloginResponse_IDPMetadata"),
		IdPEntityID:  "https://app.onelogin.com/saml/metadata/503983",
		Audience:     "https://29ee6d2e.ngrok.io/saml/metadata",
		ACS:          "https://29ee6d2e.ngrok.io/saml/acs",
		InResponseTo: "id-d40c15c104b52691eccf0a2a5c8a15595be75423",
		At:           mustTime("2016-01-05T17:53:12Z"),
	}
	out = append(out,
		crewjamCase(t, cj, onelogin, "crewjam/onelogin", "TestSPCanHandleOneloginResponse_response", "", ""),
		crewjamCase(t, cj, onelogin, "crewjam/xsw1", "TestXswPermutationOneIsRejected_response", "crewjam/onelogin",
			"XSW1: the root is a new unsigned Response (ID _evil_response_ID, same content); the original signed "+
				"Response is moved inside the root's ds:Signature element. The signature still verifies against the "+
				"element it references, but that is not the Response the SP reads."),
		crewjamCase(t, cj, onelogin, "crewjam/xsw2", "TestXswPermutationTwoIsRejected_response", "crewjam/onelogin",
			"XSW2: the root is a new unsigned Response (ID _evil_response_ID); the original signed Response is a "+
				"child placed before the root's (now detached) ds:Signature, which references the inner copy."),
	)

	// crewjam/saml: TestServiceProviderCanHandleSignedAssertionsResponse and
	// TestXswPermutation{Three..Nine}IsRejected. The signing certificate is valid from
	// 2014-07-17T14:12:56Z, hence At (crewjam's tests run 7 to 9 at that moment too).
	signedAssertion := WrappingCase{
		CertPEM:      idpMetadataCert(t, cj, "testdata/TestServiceProviderCanHandleSignedAssertionsResponse_IDPMetadata"),
		IdPEntityID:  "http://idp.example.com/metadata.php",
		Audience:     "http://sp.example.com/demo1/metadata.php",
		ACS:          "http://sp.example.com/demo1/index.php?acs",
		InResponseTo: "ONELOGIN_4fee3b046395c4e751011e97f8900b5273d56685",
		At:           mustTime("2014-07-17T14:12:57Z"),
	}
	out = append(out,
		crewjamCase(t, cj, signedAssertion, "crewjam/signed-assertion", "TestServiceProviderCanHandleSignedAssertionsResponse_response", "", ""),
		crewjamCase(t, cj, signedAssertion, "crewjam/xsw3", "TestXswPermutationThreeIsRejected_response", "crewjam/signed-assertion",
			"XSW3: an unsigned attacker Assertion (ID _evil_assertion_ID) is inserted before the original signed "+
				"Assertion; an SP that verifies 'a' signature but reads the first Assertion takes the unsigned one."),
		crewjamCase(t, cj, signedAssertion, "crewjam/xsw4", "TestXswPermutationFourIsRejected_response", "crewjam/signed-assertion",
			"XSW4: the original signed Assertion is wrapped inside an unsigned attacker Assertion "+
				"(ID _evil_assertion_ID), the only Assertion directly under the Response."),
		crewjamCase(t, cj, signedAssertion, "crewjam/xsw5", "TestXswPermutationFiveIsRejected_response", "crewjam/signed-assertion",
			"XSW5: the original's ds:Signature is moved into an attacker Assertion (ID _evil_assertion_ID) placed "+
				"first; the original Assertion follows unsigned, still carrying the ID the signature references."),
		crewjamCase(t, cj, signedAssertion, "crewjam/xsw6", "TestXswPermutationSixIsRejected_response", "crewjam/signed-assertion",
			"XSW6: the attacker Assertion (ID _evil_assertion_ID) carries the ds:Signature, and the original "+
				"Assertion (referenced ID) is hidden inside that ds:Signature."),
		crewjamCase(t, cj, signedAssertion, "crewjam/xsw7", "TestXswPermutationSevenIsRejected_response", "crewjam/signed-assertion",
			"XSW7: an unsigned copy of the Assertion with the same ID is hidden in a samlp:Extensions element "+
				"before the signed Assertion: two elements share the referenced ID."),
		crewjamCase(t, cj, signedAssertion, "crewjam/xsw8", "TestXswPermutationEightIsRejected_response", "crewjam/signed-assertion",
			"XSW8: the original Assertion, stripped of its signature, is put in a ds:Object inside the ds:Signature "+
				"of an outer Assertion with the same ID, which the SP reads."),
		crewjamCase(t, cj, signedAssertion, "crewjam/xsw9", "TestXswPermutationNineIsRejected_response", "crewjam/signed-assertion",
			"XSW9: an attacker Assertion with a spoofed ID carries the ds:Signature; the original Assertion it "+
				"references sits in an unknown <xsw_wrapper> element beside it."),
	)

	// crewjam/saml: TestSPRejectsInjectedComment (CVE-2018-7340).
	google := WrappingCase{
		CertPEM:      idpMetadataCert(t, cj, "testdata/TestSPRejectsInjectedComment_IDPMetadata"),
		IdPEntityID:  "https://accounts.google.com/o/saml2?idpid=C02dfl1r1",
		Audience:     "https://29ee6d2e.ngrok.io/saml/metadata",
		ACS:          "https://29ee6d2e.ngrok.io/saml/acs",
		InResponseTo: "id-fd419a5ab0472645427f8e07d87a3a5dd0b2e9a6",
		At:           mustTime("2016-01-05T16:56:00Z"),
	}
	legitGoogle := crewjamCase(t, cj, google, "crewjam/google", "TestSPRejectsInjectedComment_response", "", "")
	injected := crewjamCase(t, cj, google, "crewjam/comment-injection", "TestSPRejectsInjectedComment_response", "crewjam/google",
		"CVE-2018-7340 comment injection, as crewjam's test builds it: the signed NameID ross@octolabs.io becomes "+
			"ross@octolabs.io<!-- and a comment -->.example.com. The canonical value changes, so the signature "+
			"must fail; an SP that reads text around comments inconsistently may still see another identity.")
	injected.ResponseB64 = rewriteB64(t, injected.ResponseB64, "ross@octolabs.io<", "ross@octolabs.io<!-- and a comment -->.example.com<")
	out = append(out, legitGoogle, injected)

	// gosaml2: providertests/onelogin_test.go (OneLogin's test responses). At is the
	// assertion's IssueInstant, as in gosaml2's own test.
	ol := WrappingCase{
		CertPEM:      readModuleFile(t, gs, "providertests/testdata/onelogin/idp.signing.cert"),
		IdPEntityID:  "https://saml.idp.nope/h9gkjzvb3e",
		Audience:     "https://saml.sp.nope/session/sso/saml/spentityid/rq5jwkvb8z",
		ACS:          "https://saml.sp.nope/session/sso/saml/acs/rq5jwkvb8z",
		InResponseTo: "id-531b2bf02ae0a588c30234163adbfd9d6bbf0747",
		At:           mustTime("2017-08-30T23:14:41.379Z"),
	}
	olCase := func(name string, n int, of, attack string) WrappingCase {
		c := ol
		c.Name, c.Of, c.Attack, c.Legit = name, of, attack, attack == ""
		file := fmt.Sprintf("providertests/testdata/onelogin/olgn09_response_%02d.b64", n)
		c.Source = gosaml2Module + "@" + moduleVersion(t, gosaml2Module) + "/" + file
		c.ResponseB64 = strings.TrimSpace(readModuleFile(t, gs, file))
		return c
	}
	out = append(out,
		olCase("gosaml2/onelogin-01", 1, "", ""),
		olCase("gosaml2/onelogin-03", 3, "", ""),
		olCase("gosaml2/onelogin-04", 4, "", ""),
		olCase("gosaml2/tampered-signed-response-assertion", 11, "gosaml2/onelogin-01",
			"Response signed (not the Assertion): the Assertion's IssueInstant is moved back one second after signing."),
		olCase("gosaml2/tampered-signed-response", 12, "gosaml2/onelogin-01",
			"Response signed: the Response's own IssueInstant is moved back one second after signing."),
		olCase("gosaml2/tampered-signed-assertion", 13, "gosaml2/onelogin-03",
			"Assertion signed (not the Response): its IssueInstant is moved back one second after signing."),
		olCase("gosaml2/tampered-both-signed-assertion", 14, "gosaml2/onelogin-04",
			"Response and Assertion signed: the Assertion's IssueInstant is moved back one second after signing."),
		olCase("gosaml2/tampered-both-signed-response", 15, "gosaml2/onelogin-04",
			"Response and Assertion signed: the Response's IssueInstant is moved back one second after signing."),
	)
	for i := range out {
		out[i].SignatureAlgorithm = signatureAlgorithm(t, out[i].ResponseB64)
	}
	return out
}

func signatureAlgorithm(t testing.TB, b64 string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("samltest: decode: %v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatalf("samltest: parse: %v", err)
	}
	if m := doc.FindElement("//SignatureMethod"); m != nil {
		return m.SelectAttrValue("Algorithm", "")
	}
	return ""
}

func crewjamCase(t testing.TB, dir string, base WrappingCase, name, file, of, attack string) WrappingCase {
	t.Helper()
	c := base
	c.Name, c.Of, c.Attack, c.Legit = name, of, attack, attack == ""
	c.Source = crewjamModule + "@" + moduleVersion(t, crewjamModule) + "/testdata/" + file
	c.ResponseB64 = strings.Join(strings.Fields(readModuleFile(t, dir, "testdata/"+file)), "")
	return c
}

// rewriteB64 decodes b64, replaces old by new exactly once, and re-encodes.
func rewriteB64(t testing.TB, b64, old, new string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("samltest: decode: %v", err)
	}
	if bytes.Count(raw, []byte(old)) != 1 {
		t.Fatalf("samltest: %q does not occur exactly once in the document", old)
	}
	return base64.StdEncoding.EncodeToString(bytes.Replace(raw, []byte(old), []byte(new), 1))
}

// idpMetadataCert returns the first signing certificate of the IdP metadata in file.
func idpMetadataCert(t testing.TB, dir, file string) string {
	t.Helper()
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal([]byte(readModuleFile(t, dir, file)), &ed); err != nil {
		t.Fatalf("samltest: %s: %v", file, err)
	}
	for _, d := range ed.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "signing" && kd.Use != "" || len(kd.KeyInfo.X509Data.X509Certificates) == 0 {
				continue
			}
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(kd.KeyInfo.X509Data.X509Certificates[0].Data), ""))
			if err != nil {
				t.Fatalf("samltest: %s: certificate: %v", file, err)
			}
			return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		}
	}
	t.Fatalf("samltest: %s has no signing certificate", file)
	return ""
}

func readModuleFile(t testing.TB, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		t.Fatalf("samltest: read test data: %v", err)
	}
	return string(b)
}

var (
	modMu   sync.Mutex
	modInfo = map[string][2]string{} // module path -> {dir, version}
)

// moduleDir returns where the build's version of module sits in the module cache,
// via `go list -m`, downloading it when it is not there yet.
func moduleDir(t testing.TB, module string) string {
	t.Helper()
	return lookupModule(t, module)[0]
}

func moduleVersion(t testing.TB, module string) string {
	t.Helper()
	return lookupModule(t, module)[1]
}

func lookupModule(t testing.TB, module string) [2]string {
	t.Helper()
	modMu.Lock()
	defer modMu.Unlock()
	if info, ok := modInfo[module]; ok {
		return info
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("samltest: the go command is needed to find %s in the module cache: %v", module, err)
	}
	list := func() (string, string) {
		out, err := exec.Command(goCmd, "list", "-m", "-f", "{{.Dir}}\t{{.Version}}", module).Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				t.Fatalf("samltest: go list -m %s: %v\n%s", module, err, ee.Stderr)
			}
			t.Fatalf("samltest: go list -m %s: %v", module, err)
		}
		dir, version, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
		return dir, version
	}
	dir, version := list()
	if dir == "" {
		if out, err := exec.Command(goCmd, "mod", "download", module).CombinedOutput(); err != nil {
			t.Fatalf("samltest: go mod download %s: %v\n%s", module, err, out)
		}
		dir, version = list()
	}
	if dir == "" {
		t.Fatalf("samltest: %s is not in the module cache; run `go mod download`", module)
	}
	modInfo[module] = [2]string{dir, version}
	return modInfo[module]
}

func mustTime(s string) time.Time {
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return at
}
