package tenancy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
)

// Every SCIM request authenticates, and an IdP sends them back to back, so a replica
// remembers a token it has looked up — with its tenant — for scimAuthFor instead of
// reading both again for each request. What changes either (a token revoked, the
// tenant's settings changed) makes every process forget the tenant's tokens at once:
// the one that made the change directly, the others through ChangesTopic on the bus.
// A change the bus cannot carry (a CLI command beside an embedded-mode server, or a
// lost message) is seen within scimAuthFor.
const (
	scimAuthFor = time.Second
	// scimAuthEntries bounds the memory: tokens, not requests, so a few per tenant.
	scimAuthEntries = 10000
)

// ChangesTopic is the bus topic on which a tenant whose tokens or settings changed is
// announced (the message is its id).
const ChangesTopic = "tenancy.changed"

type scimAuthEntry struct {
	principal SCIMPrincipal
	token     SCIMToken
	at        time.Time // when it was read (this machine's monotonic clock)
}

type scimAuthCache struct {
	entries *lru.Cache[string, scimAuthEntry] // by token hash
	// forgets counts forgetTenant calls: a lookup that read the database while one
	// happened may have read what it forgot, so it remembers nothing.
	forgets *atomic.Uint64
}

func newSCIMAuthCache() scimAuthCache {
	c, _ := lru.New[string, scimAuthEntry](scimAuthEntries)
	return scimAuthCache{entries: c, forgets: new(atomic.Uint64)}
}

// remember keeps e unless a tenant was forgotten since forgets was read (before e was).
func (c scimAuthCache) remember(hash string, e scimAuthEntry, forgets uint64) {
	c.entries.Add(hash, e)
	if c.forgets.Load() != forgets {
		c.entries.Remove(hash)
	}
}

func (c scimAuthCache) get(hash string) (scimAuthEntry, bool) {
	e, ok := c.entries.Get(hash)
	if !ok || time.Since(e.at) >= scimAuthFor {
		return scimAuthEntry{}, false
	}
	return e, true
}

func (c scimAuthCache) forgetTenant(tenantID string) {
	c.forgets.Add(1)
	for _, k := range c.entries.Keys() {
		if e, ok := c.entries.Peek(k); ok && e.principal.Tenant.ID == tenantID {
			c.entries.Remove(k)
		}
	}
}

// ShareChanges makes this service announce its tenants' changes on b and forget what it
// remembered of tenants whose changes others announce there, until ctx ends. A server
// calls it once at start; a command that changes tenants calls it so that servers see
// the change at once.
func (s *Service) ShareChanges(ctx context.Context, b bus.Bus, log *slog.Logger) error {
	ch, err := b.Subscribe(ctx, ChangesTopic)
	if err != nil {
		return err
	}
	s.bus, s.log = b, log
	go func() {
		for msg := range ch {
			s.scimAuth.forgetTenant(string(msg))
		}
	}()
	return nil
}

// changed is called after a change to the tenant's tokens or settings has committed.
func (s *Service) changed(ctx context.Context, tenantID string) {
	s.scimAuth.forgetTenant(tenantID)
	if s.bus == nil {
		return
	}
	if err := s.bus.Publish(ctx, ChangesTopic, []byte(tenantID)); err != nil {
		s.log.WarnContext(ctx, "cannot announce a tenant change to the other replicas; they see it within a second", "tenant", tenantID, "err", err)
	}
}
