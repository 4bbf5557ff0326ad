package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// collector is a publisher that remembers what it was given.
type collector struct {
	mu     sync.Mutex
	events []audit.Stored
	fail   error
}

func (c *collector) publish(_ context.Context, events []audit.Stored) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.events = append(c.events, events...)
	return nil
}

func keys(events []audit.Stored) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = fmt.Sprintf("%s#%d", e.TenantID, e.Seq)
	}
	return out
}

// Only committed events are relayed, in tenant and seq order; a failed publish leaves
// them for the next call; a relayed event is not relayed again.
func TestRelay(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		var c collector
		if n, err := f.log.Relay(ctx, bdb, 100, c.publish); err != nil || n != 0 {
			t.Fatalf("Relay of an empty outbox = %d, %v", n, err)
		}
		f.record("globex", 2)
		f.clock.Advance(time.Second)
		err := db.RunInTx(ctx, bdb, func(ctx context.Context, tx bun.Tx) error {
			if err := f.log.Record(ctx, tx, audit.Event{TenantID: "acme", Action: "user.deleted"}); err != nil {
				return err
			}
			return errors.New("rolled back")
		})
		if err == nil {
			t.Fatal("the transaction committed")
		}
		f.record("acme", 3)

		// Publishing fails: nothing is lost.
		c.fail = errors.New("bus down")
		if n, err := f.log.Relay(ctx, bdb, 100, c.publish); !errors.Is(err, c.fail) || n != 0 {
			t.Fatalf("Relay with a failing publisher = %d, %v", n, err)
		}
		c.fail = nil
		// A limit takes the oldest rows first.
		if n, err := f.log.Relay(ctx, bdb, 2, c.publish); err != nil || n != 2 {
			t.Fatalf("Relay(2) = %d, %v", n, err)
		}
		if n, err := f.log.Relay(ctx, bdb, 100, c.publish); err != nil || n != 3 {
			t.Fatalf("Relay = %d, %v", n, err)
		}
		if got, want := keys(c.events), []string{"globex#1", "globex#2", "acme#1", "acme#2", "acme#3"}; !slices.Equal(got, want) {
			t.Fatalf("published %v, want %v", got, want)
		}
		for _, e := range c.events {
			if e.Action == "user.deleted" {
				t.Fatal("an event of a rolled-back transaction was relayed")
			}
			if e.Hash == "" || e.ID == "" {
				t.Fatalf("relayed %+v", e)
			}
		}
		if n, err := f.log.Relay(ctx, bdb, 100, c.publish); err != nil || n != 0 {
			t.Fatalf("Relay after everything was relayed = %d, %v", n, err)
		}
		// Several tenants in one batch come ordered by tenant, then seq.
		f.record("globex", 1)
		f.record("acme", 1)
		f.record("globex", 1)
		c.events = nil
		if n, err := f.log.Relay(ctx, bdb, 100, c.publish); err != nil || n != 3 {
			t.Fatalf("Relay = %d, %v", n, err)
		}
		if got, want := keys(c.events), []string{"acme#4", "globex#3", "globex#4"}; !slices.Equal(got, want) {
			t.Fatalf("published %v, want %v", got, want)
		}
	})
}

// An event whose transaction is still open is not relayed until it commits.
func TestRelayWaitsForCommit(t *testing.T) {
	// On PostgreSQL; SQLite allows one writer, so there Relay waits for the commit.
	bdb := testenv.Postgres(t)
	f := newFx(t, bdb)
	tx, err := bdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := f.log.Record(ctx, tx, audit.Event{TenantID: "acme", Action: "user.created"}); err != nil {
		t.Fatal(err)
	}
	var c collector
	if n, err := f.log.Relay(ctx, bdb, 100, c.publish); err != nil || n != 0 {
		t.Fatalf("Relay before the commit = %d, %v", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n, err := f.log.Relay(ctx, bdb, 100, c.publish); err != nil || n != 1 {
		t.Fatalf("Relay after the commit = %d, %v", n, err)
	}
}

// Two relays on PostgreSQL at once publish each of 1,000 events exactly once.
func TestConcurrentRelaysPublishOnce(t *testing.T) {
	bdb := testenv.Postgres(t)
	f := newFx(t, bdb)
	const total = 1000
	// Record in bulk: 4 tenants, 250 events each, 50 per transaction.
	for tn := range 4 {
		for range 5 {
			err := db.RunInTx(ctx, bdb, func(ctx context.Context, tx bun.Tx) error {
				for range 50 {
					if err := f.log.Record(ctx, tx, audit.Event{TenantID: fmt.Sprintf("t%d", tn), Action: "user.updated"}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	perRelay := make([]int, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			publish := func(_ context.Context, events []audit.Stored) error {
				time.Sleep(2 * time.Millisecond) // hold the claim a moment, as a real bus would
				mu.Lock()
				defer mu.Unlock()
				for _, e := range events {
					seen[e.ID]++
				}
				return nil
			}
			for {
				n, err := f.log.Relay(ctx, bdb, 25, publish)
				if err != nil {
					errs <- err
					return
				}
				if n == 0 {
					return
				}
				perRelay[r] += n
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != total {
		t.Fatalf("%d distinct events published, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("event %s published %d times", id, n)
		}
	}
	if perRelay[0]+perRelay[1] != total || perRelay[0] == 0 || perRelay[1] == 0 {
		t.Fatalf("relays published %v: both should have taken part", perRelay)
	}
}
