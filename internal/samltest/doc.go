// Package samltest gives tests of a SAML service provider (SP) real identity providers.
//
// Two kinds, for two kinds of test:
//
//   - IdP crafts SAML documents with real XML signatures (goxmldsig, RSA-SHA256,
//     exclusive c14n) and every knob a negative test needs: wrong audience, recipient,
//     destination, issuer, times, status, a second assertion, a foreign key, and
//     tampering after signing (Mutate, InjectCommentInNameID, WithDoctype).
//     SignatureWrappingCases adds the signature-wrapping and tampered documents that
//     github.com/crewjam/saml and github.com/russellhaering/gosaml2 ship in their own
//     test data, each with the settings it was valid for.
//   - RealIdP runs crewjam/saml's samlidp (a complete, if small, IdP) on loopback, with
//     users, registered SPs and IdP-initiated shortcuts, plus browser helpers (SignIn,
//     PostForm) that drive a cookie-jar http.Client through a real login.
//
// Everything here is for _test.go files; nothing in the product imports it.
package samltest
