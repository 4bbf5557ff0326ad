package sso

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"strconv"

	saml2 "github.com/russellhaering/gosaml2"

	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// SP metadata, written by hand rather than with gosaml2's Metadata() because it must
// list every published SP certificate (next, active and previous) for rotation.
type spMetadata struct {
	XMLName  xml.Name `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
	EntityID string   `xml:"entityID,attr"`
	SP       spSSO    `xml:"SPSSODescriptor"`
}

type spSSO struct {
	AuthnRequestsSigned  bool          `xml:"AuthnRequestsSigned,attr"`
	WantAssertionsSigned bool          `xml:"WantAssertionsSigned,attr"`
	Protocols            string        `xml:"protocolSupportEnumeration,attr"`
	Keys                 []keyDesc     `xml:"KeyDescriptor"`
	SLO                  []endpoint    `xml:"SingleLogoutService"`
	NameIDFormats        []string      `xml:"NameIDFormat"`
	ACS                  []indexedEndp `xml:"AssertionConsumerService"`
}

type keyDesc struct {
	Use  string `xml:"use,attr"`
	Cert string `xml:"http://www.w3.org/2000/09/xmldsig# KeyInfo>X509Data>X509Certificate"`
}

type endpoint struct {
	Binding  string `xml:"Binding,attr"`
	Location string `xml:"Location,attr"`
}

type indexedEndp struct {
	Binding   string `xml:"Binding,attr"`
	Location  string `xml:"Location,attr"`
	Index     string `xml:"index,attr"`
	IsDefault bool   `xml:"isDefault,attr"`
}

func (h *Handler) metadata(w http.ResponseWriter, r *http.Request) {
	t, err := h.tenancy.TenantBySlug(r.Context(), r.PathValue("tenant"))
	if err != nil {
		h.notConfigured(w, r, err)
		return
	}
	b, err := h.SPMetadata(r.Context(), t)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Header().Set("Content-Disposition", `inline; filename="gatehouse-`+t.Slug+`-sp-metadata.xml"`)
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write(b)
}

// SPMetadata is the tenant's SP metadata document: what GET /saml/{slug}/metadata serves
// and what the GraphQL API shows an admin.
func (h *Handler) SPMetadata(ctx context.Context, t tenancy.Tenant) ([]byte, error) {
	signed := false
	if conn, err := h.tenancy.SAMLConnection(ctx, t.ID); err == nil {
		signed = conn.SignRequests
	}
	published, err := h.keys.Published(ctx, keys.PurposeSAML)
	if err != nil {
		return nil, err
	}
	return h.spMetadataXML(t, signed, published)
}

func (h *Handler) spMetadataXML(t tenancy.Tenant, signed bool, published []keys.Key) ([]byte, error) {
	md := spMetadata{EntityID: h.spEntityID(t.Slug), SP: spSSO{
		AuthnRequestsSigned: signed, WantAssertionsSigned: true,
		Protocols: "urn:oasis:names:tc:SAML:2.0:protocol",
		SLO: []endpoint{{Binding: saml2.BindingHttpRedirect, Location: h.sloURL(t.Slug)},
			{Binding: saml2.BindingHttpPost, Location: h.sloURL(t.Slug)}},
		NameIDFormats: []string{"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"},
		ACS:           []indexedEndp{{Binding: saml2.BindingHttpPost, Location: h.acsURL(t.Slug), Index: strconv.Itoa(0), IsDefault: true}},
	}}
	for _, k := range published {
		if k.Certificate != nil {
			md.SP.Keys = append(md.SP.Keys, keyDesc{Use: "signing", Cert: base64.StdEncoding.EncodeToString(k.Certificate.Raw)})
		}
	}
	b, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), b...), nil
}
