package tenancy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
)

// Limits of a metadata fetch.
const (
	metadataFetchTimeout  = 10 * time.Second
	metadataMaxRedirects  = 3
	metadataMaxHeaderSize = 64 << 10
)

// AllowPrivateMetadataURLs lets metadata URLs use plain http and point at private,
// loopback and link-local addresses. It is for development and tests, where the IdP
// runs next to Gatehouse; in production it would let a tenant admin make the server
// fetch from its internal network. Call it while wiring, before serving requests.
func (s *Service) AllowPrivateMetadataURLs(allow bool) {
	s.metadata = newMetadataFetcher(allow)
}

// metadataFetcher downloads IdP metadata over HTTPS from public addresses only. The
// address check runs at dial time on the IP actually connected to, so neither DNS
// rebinding nor a redirect can reach an internal address.
type metadataFetcher struct {
	allowPrivate bool
	client       *http.Client
	// classify says why an address is not public ("" when it is): nonPublicKind,
	// which tests replace to stand a loopback server in for a public IdP.
	classify func(netip.Addr) string
}

func newMetadataFetcher(allowPrivate bool) *metadataFetcher {
	f := &metadataFetcher{allowPrivate: allowPrivate, classify: nonPublicKind}
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: f.checkDial}
	transport := &http.Transport{
		Proxy:                  nil, // a proxy would make the dial check look at the proxy's address
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  metadataFetchTimeout,
		MaxResponseHeaderBytes: metadataMaxHeaderSize,
		DisableKeepAlives:      true,
	}
	f.client = &http.Client{
		Transport: transport,
		Timeout:   metadataFetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > metadataMaxRedirects {
				return &fetchRefusal{msg: fmt.Sprintf("it redirected more than %d times", metadataMaxRedirects)}
			}
			return f.checkURL(req.URL)
		},
	}
	return f
}

// fetchRefusal is a URL or address the fetcher will not go to.
type fetchRefusal struct{ msg string }

func (e *fetchRefusal) Error() string { return e.msg }

func (f *metadataFetcher) checkURL(u *url.URL) error {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && f.allowPrivate:
	default:
		return &fetchRefusal{msg: fmt.Sprintf("the URL scheme is %q; metadata URLs must use https", u.Scheme)}
	}
	if u.Host == "" {
		return &fetchRefusal{msg: "the URL has no host"}
	}
	if u.User != nil {
		return &fetchRefusal{msg: "the URL carries a user name or password; metadata URLs must be public"}
	}
	return nil
}

// checkDial runs on every connection attempt with the resolved address.
func (f *metadataFetcher) checkDial(_, address string, _ syscall.RawConn) error {
	if f.allowPrivate {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return &fetchRefusal{msg: fmt.Sprintf("cannot check the address %q", address)}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return &fetchRefusal{msg: fmt.Sprintf("cannot check the address %q", host)}
	}
	if kind := f.classify(ip); kind != "" {
		return &fetchRefusal{msg: fmt.Sprintf("its host resolves to %s, %s address; metadata is only fetched from public internet addresses", ip.WithZone(""), kind)}
	}
	return nil
}

var nonPublicPrefixes = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "a \"this network\""},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved"},
	{netip.MustParsePrefix("::/96"), "a reserved (IPv4-compatible)"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local"},
	// Prefixes that carry an IPv4 address inside, which may be a private one, through
	// translators and tunnels a host may route to: refused whole, as no IdP publishes
	// metadata there.
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64"},
	{netip.MustParsePrefix("2002::/16"), "a 6to4"},
	{netip.MustParsePrefix("2001::/32"), "a Teredo"},
}

// nonPublicKind says why ip is not a public unicast address ("" when it is).
func nonPublicKind(ip netip.Addr) string {
	ip = ip.WithZone("").Unmap()
	if nat64 := netip.MustParsePrefix("64:ff9b::/96"); nat64.Contains(ip) {
		b := ip.As16()
		if k := nonPublicKind(netip.AddrFrom4([4]byte(b[12:]))); k != "" {
			return k
		}
	}
	switch {
	case ip.IsLoopback():
		return "a loopback"
	case ip.IsPrivate():
		return "a private"
	case ip.IsMulticast(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "a multicast or broadcast"
	case ip.IsLinkLocalUnicast():
		return "a link-local"
	case ip.IsUnspecified():
		return "an unspecified"
	}
	for _, p := range nonPublicPrefixes {
		if p.prefix.Contains(ip) {
			return p.kind
		}
	}
	return ""
}

// fetch downloads the document at rawURL: https only, public addresses only (unless
// allowPrivate), at most 3 redirects, 10 seconds and 1 MiB.
func (f *metadataFetcher) fetch(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || !u.IsAbs() {
		return nil, apperr.Invalid("the metadata URL %q is not an absolute https URL", truncate(rawURL, 200))
	}
	if len(rawURL) > 2048 {
		return nil, apperr.Invalid("the metadata URL is %d characters; the limit is 2048", len(rawURL))
	}
	shown := u.Redacted()
	refused := func(reason string) error {
		return apperr.Invalid("cannot fetch the IdP metadata from %s: %s", shown, reason)
	}
	if err := f.checkURL(u); err != nil {
		return nil, refused(err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, metadataFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, refused(err.Error())
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1")
	req.Header.Set("User-Agent", "Gatehouse (SAML metadata fetch)")
	resp, err := f.client.Do(req)
	if err != nil {
		var r *fetchRefusal
		var ne net.Error
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &r):
			return nil, refused(r.msg)
		case errors.As(err, &dnsErr) && !dnsErr.IsTimeout:
			// Not the resolver's own message: it names the server's internal DNS server.
			return nil, refused(fmt.Sprintf("the host name %q was not found in DNS", dnsErr.Name))
		case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
			return nil, refused(fmt.Sprintf("it did not answer within %s", metadataFetchTimeout))
		default:
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, refused(err.Error())
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, refused(fmt.Sprintf("it answered HTTP %d; the URL must serve the metadata to anyone, without signing in", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataBytes+1))
	if err != nil {
		return nil, refused(fmt.Sprintf("reading the response failed: %v", err))
	}
	if len(body) > MaxMetadataBytes {
		return nil, refused("the document is larger than 1 MiB")
	}
	return body, nil
}
