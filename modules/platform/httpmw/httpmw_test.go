package httpmw_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/platform/httpmw"
	"github.com/gatehouse-dev/gatehouse/modules/platform/querycount"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var timingRE = regexp.MustCompile(`^db;dur=([0-9]+\.[0-9]{2});desc="([0-9]+) queries"$`)

// The Server-Timing header counts the statements a request ran before its header went
// out, however the handler writes its response, and each request starts from zero.
func TestServerTimingCountsTheRequestsStatements(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		bdb.AddQueryHook(querycount.Hook{})
		// n statements: a transaction with n-2 SELECTs in it (BEGIN and COMMIT count).
		work := func(r *http.Request, n int) {
			err := bdb.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
				for range n - 2 {
					if _, err := tx.ExecContext(ctx, "SELECT 1"); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/write-header", func(w http.ResponseWriter, r *http.Request) {
			work(r, 4)
			w.WriteHeader(http.StatusCreated)
			work(r, 3) // after the header: not in it
		})
		mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
			work(r, 7)
			w.Write([]byte("body"))
		})
		mux.HandleFunc("/silent", func(w http.ResponseWriter, r *http.Request) { work(r, 2) })
		mux.HandleFunc("/none", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
		srv := httptest.NewServer(httpmw.ServerTiming(mux))
		t.Cleanup(srv.Close)

		for _, c := range []struct {
			path    string
			status  int
			queries int
		}{{"/write-header", 201, 4}, {"/write", 200, 7}, {"/silent", 200, 2}, {"/none", 200, 0}, {"/write", 200, 7}} {
			resp, err := http.Get(srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			h := resp.Header.Values(httpmw.ServerTimingHeader)
			if resp.StatusCode != c.status || len(h) != 1 {
				t.Fatalf("%s: %d with Server-Timing %q", c.path, resp.StatusCode, h)
			}
			m := timingRE.FindStringSubmatch(h[0])
			if m == nil {
				t.Fatalf("%s: Server-Timing %q is not db;dur=…;desc=\"N queries\"", c.path, h[0])
			}
			if n, _ := strconv.Atoi(m[2]); n != c.queries {
				t.Errorf("%s: Server-Timing %q, want %d queries", c.path, h[0], c.queries)
			}
			if c.queries == 0 && m[1] != "0.00" {
				t.Errorf("%s: Server-Timing %q: time without statements", c.path, h[0])
			}
		}
	})
}
