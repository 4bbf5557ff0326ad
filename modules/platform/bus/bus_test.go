package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func eachBus(t *testing.T, fn func(t *testing.T, a, b bus.Bus)) {
	t.Run("memory", func(t *testing.T) { m := bus.NewMemory(); fn(t, m, m) })
	t.Run("redis", func(t *testing.T) {
		r1, r2 := testenv.Redis(t), testenv.Redis(t)
		// Two clients (two replicas) on one prefix.
		fn(t, bus.NewRedis(r1.Client(), "bus-test:"), bus.NewRedis(r2.Client(), "bus-test:"))
	})
	t.Run("redis-cluster", func(t *testing.T) {
		url := testenv.StartRedisCluster(t)
		c1, err := cache.NewRedis(context.Background(), url, "")
		if err != nil {
			t.Fatal(err)
		}
		c2, err := cache.NewRedis(context.Background(), url, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c1.Close(); c2.Close() })
		fn(t, bus.NewRedis(c1.Client(), "x:"), bus.NewRedis(c2.Client(), "x:"))
	})
}

// A message published by one process reaches a subscriber in another, in order, and
// an ended subscription's channel closes.
func TestPublishSubscribe(t *testing.T) {
	eachBus(t, func(t *testing.T, a, b bus.Bus) {
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := b.Subscribe(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		other, _ := b.Subscribe(ctx, "t2")
		for _, m := range []string{"one", "two", "three"} {
			if err := a.Publish(context.Background(), "t1", []byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{"one", "two", "three"} {
			select {
			case got := <-ch:
				if string(got) != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%q did not arrive", want)
			}
		}
		select {
		case m := <-other:
			t.Fatalf("another topic's subscriber got %q", m)
		case <-time.After(100 * time.Millisecond):
		}
		cancel()
		select {
		case _, ok := <-ch:
			for ok {
				_, ok = <-ch
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the channel did not close after the context ended")
		}
	})
}
