package querycount_test

import (
	"context"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/platform/querycount"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Every statement run under a counted context is counted once — builder queries, raw
// statements and the transaction brackets — and nothing run under another context is.
func TestCountsTheStatementsOfItsContextOnly(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		bdb.AddQueryHook(querycount.Hook{})
		ctx, c := querycount.With(context.Background())
		other, o := querycount.With(context.Background())

		var n int
		if err := bdb.NewSelect().ColumnExpr("1").Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		if _, err := bdb.ExecContext(ctx, "SELECT 2"); err != nil {
			t.Fatal(err)
		}
		err := bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.ExecContext(ctx, "SELECT 3")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Queries(); got != 5 { // SELECT 1, SELECT 2, BEGIN, SELECT 3, COMMIT
			t.Fatalf("counted %d statements, want 5", got)
		}
		if c.Time() <= 0 {
			t.Fatalf("no time recorded for %d statements", c.Queries())
		}
		if _, err := bdb.ExecContext(context.Background(), "SELECT 4"); err != nil {
			t.Fatal(err)
		}
		if o.Queries() != 0 || c.Queries() != 5 {
			t.Fatalf("a statement of another context was counted: %d and %d", c.Queries(), o.Queries())
		}

		// Dataloaders run a request's batches on several goroutines at once.
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, err := bdb.ExecContext(other, "SELECT 5"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if o.Queries() != 20 {
			t.Fatalf("20 concurrent statements counted as %d", o.Queries())
		}
	})
}
