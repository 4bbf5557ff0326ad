// Package bus carries small messages between the processes of a deployment: Redis
// pub/sub when Redis is configured (single node, Sentinel or Cluster — cluster pub/sub
// reaches every node), otherwise an in-process fan-out for the embedded single node.
// Delivery is at most once and only to current subscribers: what must not be lost
// (audit events) is also in the database, and subscribers fill gaps from there.
package bus

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Bus publishes to and subscribes to topics.
type Bus interface {
	Publish(ctx context.Context, topic string, msg []byte) error
	// Subscribe returns a channel of the topic's messages, closed when ctx ends. The
	// subscription is active when Subscribe returns, so nothing published after that
	// is missed by a healthy bus.
	Subscribe(ctx context.Context, topic string) (<-chan []byte, error)
}

// buffer is how many messages a slow subscriber may fall behind before messages to it
// are dropped (it then finds the gap and reads the database).
const buffer = 256

// Memory is the in-process bus.
type Memory struct {
	mu   sync.Mutex
	subs map[string]map[chan []byte]struct{}
}

// NewMemory returns an empty in-process bus.
func NewMemory() *Memory { return &Memory{subs: map[string]map[chan []byte]struct{}{}} }

func (m *Memory) Publish(_ context.Context, topic string, msg []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for ch := range m.subs[topic] {
		select {
		case ch <- msg:
		default: // a stuck subscriber must not stall the publisher
		}
	}
	return nil
}

func (m *Memory) Subscribe(ctx context.Context, topic string) (<-chan []byte, error) {
	ch := make(chan []byte, buffer)
	m.mu.Lock()
	if m.subs[topic] == nil {
		m.subs[topic] = map[chan []byte]struct{}{}
	}
	m.subs[topic][ch] = struct{}{}
	m.mu.Unlock()
	go func() {
		<-ctx.Done()
		m.mu.Lock()
		delete(m.subs[topic], ch)
		if len(m.subs[topic]) == 0 {
			delete(m.subs, topic)
		}
		m.mu.Unlock()
		close(ch)
	}()
	return ch, nil
}

// Redis is the bus over Redis pub/sub; topics are prefixed like cache keys. On a Redis
// Cluster it uses sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7): a topic lives on the
// node of its hash slot, so its messages keep their order — a plain PUBLISH goes to
// any node and reaches the others over the cluster bus, and two in a row can arrive
// swapped.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	sharded bool
}

// NewRedis returns a bus on client.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	_, cluster := client.(*redis.ClusterClient)
	return &Redis{client: client, prefix: prefix, sharded: cluster}
}

func (r *Redis) Publish(ctx context.Context, topic string, msg []byte) error {
	if r.sharded {
		return r.client.SPublish(ctx, r.prefix+topic, msg).Err()
	}
	return r.client.Publish(ctx, r.prefix+topic, msg).Err()
}

func (r *Redis) Subscribe(ctx context.Context, topic string) (<-chan []byte, error) {
	subscribe := r.client.Subscribe
	if r.sharded {
		subscribe = r.client.SSubscribe
	}
	ps := subscribe(ctx, r.prefix+topic)
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		ps.Close()
		return nil, err
	}
	out := make(chan []byte, buffer)
	in := ps.Channel(redis.WithChannelSize(buffer))
	go func() {
		defer close(out)
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- []byte(m.Payload):
				default:
				}
			}
		}
	}()
	return out, nil
}
