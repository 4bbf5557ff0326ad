package samltest

import (
	"encoding/base64"
	"testing"

	"github.com/beevik/etree"
)

// Every legit document must be accepted by gosaml2 under its case's settings, and every
// attack refused under the very same settings, so the cases are honest negatives.
func TestSignatureWrappingCases(t *testing.T) {
	cases := SignatureWrappingCases(t)
	byName := map[string]WrappingCase{}
	attacks := 0
	for _, c := range cases {
		if _, dup := byName[c.Name]; dup {
			t.Fatalf("duplicate case %s", c.Name)
		}
		byName[c.Name] = c
		if !c.Legit {
			attacks++
		}
	}
	if attacks < 4 {
		t.Fatalf("only %d attack cases", attacks)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if c.SignatureAlgorithm == "" || c.Source == "" || c.CertPEM == "" {
				t.Fatalf("incomplete case %+v", c)
			}
			if c.Legit != (c.Attack == "") {
				t.Fatal("Legit and Attack disagree")
			}
			raw, err := base64.StdEncoding.DecodeString(c.ResponseB64)
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil || doc.Root().Tag != "Response" {
				t.Fatalf("not a Response: %v", err)
			}
			if !c.Legit {
				of, ok := byName[c.Of]
				if !ok || !of.Legit {
					t.Fatalf("attack %s names no legit original (%q)", c.Name, c.Of)
				}
				if of.CertPEM != c.CertPEM || of.ACS != c.ACS || of.Audience != c.Audience || !of.At.Equal(c.At) {
					t.Fatal("attack and original need different SP settings")
				}
			}
			sp := gosamlSP(t, spConfig{CertPEM: c.CertPEM, IdPIssuer: c.IdPEntityID, ACS: c.ACS, Audience: c.Audience, At: c.At})
			info, err := accept(sp, c.ResponseB64)
			switch {
			case c.Legit && err != nil:
				t.Fatalf("gosaml2 refused the legit document: %v", err)
			case !c.Legit && err == nil:
				t.Fatalf("gosaml2 accepted the attack (NameID %q)", info.NameID)
			case !c.Legit:
				t.Logf("refused: %v", err)
			default:
				t.Logf("accepted: NameID %q", info.NameID)
			}
		})
	}
}
