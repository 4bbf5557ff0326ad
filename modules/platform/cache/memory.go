package cache

import (
	"context"
	"sync"
	"time"
)

// Memory is an in-process Cache for the embedded single-node mode and for tests of code
// that needs no second replica.
type Memory struct {
	mu    sync.Mutex
	items map[string]memItem
	now   func() time.Time
	stop  chan struct{}
	once  sync.Once
}

type memItem struct {
	val     []byte
	expires time.Time
	buried  bool
}

// NewMemory returns an empty Memory cache that sweeps expired entries every minute.
func NewMemory() *Memory {
	m := &Memory{items: map[string]memItem{}, now: time.Now, stop: make(chan struct{})}
	go m.sweep(time.Minute)
	return m
}

func (m *Memory) sweep(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			now := m.now()
			m.mu.Lock()
			for k, it := range m.items {
				if !now.Before(it.expires) {
					delete(m.items, k)
				}
			}
			m.mu.Unlock()
		}
	}
}

func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[key]
	if !ok || !m.now().Before(it.expires) {
		return nil, ErrMiss
	}
	if it.buried {
		return nil, ErrBuried
	}
	return append([]byte(nil), it.val...), nil
}

func (m *Memory) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[key] = memItem{val: append([]byte(nil), val...), expires: m.now().Add(ttl)}
	return nil
}

func (m *Memory) SetNX(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if it, ok := m.items[key]; ok && now.Before(it.expires) {
		return false, nil
	}
	m.items[key] = memItem{val: append([]byte(nil), val...), expires: now.Add(ttl)}
	return true, nil
}

func (m *Memory) Take(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[key]
	delete(m.items, key)
	if !ok || !m.now().Before(it.expires) {
		return nil, ErrMiss
	}
	return it.val, nil
}

func (m *Memory) Del(_ context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.items, k)
	}
	return nil
}

func (m *Memory) Bury(_ context.Context, ttl time.Duration, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		m.items[k] = memItem{expires: m.now().Add(ttl), buried: true}
	}
	return nil
}

func (m *Memory) SetUnlessBuried(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if it, ok := m.items[key]; ok && it.buried && now.Before(it.expires) {
		return false, nil
	}
	m.items[key] = memItem{val: append([]byte(nil), val...), expires: now.Add(ttl)}
	return true, nil
}

func (m *Memory) Generation() uint64         { return 0 }
func (m *Memory) Ping(context.Context) error { return nil }
func (m *Memory) Kind() string               { return "memory" }

func (m *Memory) Close() error {
	m.once.Do(func() { close(m.stop) })
	return nil
}
