package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/scim"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// benchCreates is how many users each iteration of the create benchmarks provisions.
const benchCreates = 1000

// BenchmarkBulkCreate provisions benchCreates users with one Bulk request per iteration,
// over real HTTP; compare with BenchmarkSingleCreates (ns/user). Run with
// go test ./modules/scim -run '^$' -bench Create -benchtime 3x
func BenchmarkBulkCreate(b *testing.B) {
	eachDBBench(b, func(b *testing.B, s benchServer) {
		for n := 0; b.Loop(); n++ {
			ops := make([]map[string]any, benchCreates)
			for i := range ops {
				ops[i] = bulkOp("POST", "/Users", fmt.Sprint(i), user(fmt.Sprintf("b%d-%d@acme.com", n, i)))
			}
			body := s.post(b, "/Bulk", bulkReq(0, ops...))
			var res struct{ Operations []struct{ Status string } }
			if err := json.Unmarshal(body, &res); err != nil || len(res.Operations) != benchCreates || res.Operations[benchCreates-1].Status != "201" {
				b.Fatalf("bulk response (%v): %.300s", err, body)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchCreates), "ns/user")
	})
}

// BenchmarkSingleCreates provisions benchCreates users with one POST /Users each.
func BenchmarkSingleCreates(b *testing.B) {
	eachDBBench(b, func(b *testing.B, s benchServer) {
		for n := 0; b.Loop(); n++ {
			for i := range benchCreates {
				s.post(b, "/Users", user(fmt.Sprintf("s%d-%d@acme.com", n, i)))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchCreates), "ns/user")
	})
}

func eachDBBench(b *testing.B, fn func(b *testing.B, s benchServer)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, newBenchServer(b, testenv.SQLite(b))) })
	b.Run("postgres", func(b *testing.B) { fn(b, newBenchServer(b, testenv.Postgres(b))) })
}

// benchServer is the SCIM server of newEnv, for benchmarks.
type benchServer struct {
	base, token string
}

func newBenchServer(b *testing.B, bdb *bun.DB) benchServer {
	b.Helper()
	ctx := context.Background()
	clk := clock.System{}
	log := audit.New(clk)
	slogger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := cache.NewMemory()
	b.Cleanup(func() { c.Close() })
	ten := tenancy.New(bdb, clk, log, noDNS{})
	ids := identity.New(bdb, clk, log, c, slogger)
	acc := access.New(bdb, clk, log, ids)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	h, err := scim.New(scim.Config{BaseURL: srv.URL + "/scim/v2", MaxBodyBytes: 64 << 10}, slogger, ten, ids, acc)
	if err != nil {
		b.Fatal(err)
	}
	mux.Handle("/scim/v2/", http.StripPrefix("/scim/v2", h))
	t, err := ten.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "acme", Features: []tenancy.Feature{tenancy.FeatureUserGroups}})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := ten.IssueSCIMToken(ctx, t.ID, "bench", 0)
	if err != nil {
		b.Fatal(err)
	}
	return benchServer{base: srv.URL + "/scim/v2", token: tok.Secret}
}

// post sends body and returns the response body, failing on a status other than 200/201.
func (s benchServer) post(b *testing.B, path string, body any) []byte {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.base+path, bytes.NewReader(j))
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 && res.StatusCode != 201 {
		b.Fatalf("POST %s: %d %.300s", path, res.StatusCode, raw)
	}
	return raw
}
