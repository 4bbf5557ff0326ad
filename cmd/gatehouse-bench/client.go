package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
)

// send sends one request and reads the whole answer (a latency includes the body).
func (b *bench) send(ctx context.Context, method, u string, hdr map[string]string, body []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data, err
}

// do is send for callers that need no response header.
func (b *bench) do(ctx context.Context, method, u string, hdr map[string]string, body []byte) (int, []byte, error) {
	st, _, data, err := b.send(ctx, method, u, hdr, body)
	return st, data, err
}

// scim calls the SCIM API of replica r with the tenant's token.
func (b *bench) scim(ctx context.Context, r *replica, method, path string, body []byte) (int, http.Header, []byte, error) {
	return b.send(ctx, method, r.base+"/scim/v2"+path, map[string]string{
		"Authorization": "Bearer " + b.token, "Content-Type": "application/scim+json"}, body)
}

// scimOK is scim that wants one status.
func (b *bench) scimOK(ctx context.Context, r *replica, want int, method, path string, body []byte) ([]byte, error) {
	data, _, err := b.scimSQL(ctx, r, want, method, path, body)
	return data, err
}

// scimSQL is scimOK that also returns what the response says of its SQL statements.
func (b *bench) scimSQL(ctx context.Context, r *replica, want int, method, path string, body []byte) ([]byte, sqlTiming, error) {
	st, h, data, err := b.scim(ctx, r, method, path, body)
	if err != nil {
		return nil, sqlTiming{}, err
	}
	if st != want {
		return nil, sqlTiming{}, fmt.Errorf("%s %s: %d (want %d): %.300s", method, path, st, want, data)
	}
	return data, parseServerTiming(h.Get("Server-Timing")), nil
}

func (b *bench) gql(ctx context.Context, r *replica, token, query string) (int, http.Header, []byte, error) {
	body, _ := json.Marshal(map[string]any{"query": query})
	return b.send(ctx, http.MethodPost, r.base+"/graphql", map[string]string{
		"Authorization": "Bearer " + token, "Content-Type": "application/json"}, body)
}

// gqlOK wants a 200 without GraphQL errors.
func (b *bench) gqlOK(ctx context.Context, r *replica, token, query string) ([]byte, error) {
	data, _, err := b.gqlSQL(ctx, r, token, query)
	return data, err
}

// gqlSQL is gqlOK that also returns what the response says of its SQL statements.
func (b *bench) gqlSQL(ctx context.Context, r *replica, token, query string) ([]byte, sqlTiming, error) {
	st, h, data, err := b.gql(ctx, r, token, query)
	if err != nil {
		return nil, sqlTiming{}, err
	}
	if st != http.StatusOK || bytes.Contains(data, []byte(`"errors"`)) {
		return nil, sqlTiming{}, fmt.Errorf("graphql %d: %.300s", st, data)
	}
	return data, parseServerTiming(h.Get("Server-Timing")), nil
}

// sqlTiming is what a Server-Timing header (GATEHOUSE_SERVER_TIMING) says of the SQL
// statements a request ran; ok is false when the response had none.
type sqlTiming struct {
	ok      bool
	queries int
	dur     time.Duration // summed over the statements
}

var serverTimingRE = regexp.MustCompile(`(?:^|,)\s*db;dur=([0-9.]+);desc="([0-9]+) queries"`)

func parseServerTiming(h string) sqlTiming {
	m := serverTimingRE.FindStringSubmatch(h)
	if m == nil {
		return sqlTiming{}
	}
	ms, _ := strconv.ParseFloat(m[1], 64)
	n, _ := strconv.Atoi(m[2])
	return sqlTiming{ok: true, queries: n, dur: time.Duration(ms * float64(time.Millisecond))}
}

// signIn posts a fresh IdP-initiated SAML response for nameID to r's ACS and returns
// the session token from the cookie.
func (b *bench) signIn(ctx context.Context, r *replica, nameID string) (string, error) {
	doc := b.idp.Response(tb{}, samltest.ResponseOptions{Destination: public + "/saml/acme/acs",
		Audience: public + "/saml/acme", NameID: nameID, SignResponse: true, SignAssertion: true})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/saml/acme/acs",
		strings.NewReader(url.Values{"SAMLResponse": {doc}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.http.Do(req)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse_session" && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", fmt.Errorf("SAML sign-in of %s on %s: %s, no session cookie", nameID, r.name, resp.Status)
}

// sessionStatus is GET /auth/session with a Bearer token: 200 alive, 401 refused.
func (b *bench) sessionStatus(ctx context.Context, r *replica, token string) (int, error) {
	st, _, err := b.do(ctx, http.MethodGet, r.base+"/auth/session", map[string]string{"Authorization": "Bearer " + token}, nil)
	return st, err
}

// sample runs fn n times (stopping early after budget) and returns each call's time.
func sample(n int, budget time.Duration, fn func(i int) error) ([]time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	start := time.Now()
	for i := range n {
		t0 := time.Now()
		if err := fn(i); err != nil {
			return ds, err
		}
		ds = append(ds, time.Since(t0))
		if time.Since(start) > budget {
			break
		}
	}
	return ds, nil
}

func userJSON(userName, externalID, email string) []byte {
	data, _ := json.Marshal(map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    userName,
		"externalId":  externalID,
		"name":        map[string]any{"givenName": "Bench", "familyName": "User"},
		"displayName": "Bench User",
		"emails":      []map[string]any{{"value": email, "type": "work", "primary": true}},
		"active":      true,
	})
	return data
}

func idOf(data []byte) string {
	var m struct {
		ID string `json:"id"`
	}
	json.Unmarshal(data, &m)
	return m.ID
}
