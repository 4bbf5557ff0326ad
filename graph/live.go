package graph

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"

	"github.com/gatehouse-dev/gatehouse/graph/model"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
)

// Live ties long-lived websocket connections to their sessions: it listens for ended
// sessions on the bus and closes every connection a session authenticated, on every
// replica, the moment the session ends.
type Live struct {
	bus bus.Bus
	log *slog.Logger

	mu    sync.Mutex
	conns map[string]map[*liveConn]struct{} // session id -> connections
}

type liveConn struct{ cancel context.CancelFunc }

// NewLive returns the registry; Run must be running for ended sessions to close
// connections at once (a periodic re-check closes them within recheckEvery anyway).
func NewLive(b bus.Bus, log *slog.Logger) *Live {
	return &Live{bus: b, log: log, conns: map[string]map[*liveConn]struct{}{}}
}

// recheckEvery bounds how long a connection outlives its session if an announcement
// is lost (the bus is at most once).
const recheckEvery = 5 * time.Second

// Run listens for ended sessions until ctx ends. It returns once subscribed.
func (l *Live) Run(ctx context.Context) error {
	ch, err := l.bus.Subscribe(ctx, identity.EndedSessionsTopic)
	if err != nil {
		return err
	}
	go func() {
		for msg := range ch {
			var ended []identity.EndedSession
			if json.Unmarshal(msg, &ended) != nil {
				continue
			}
			l.mu.Lock()
			for _, e := range ended {
				for c := range l.conns[e.SessionID] {
					c.cancel()
				}
			}
			l.mu.Unlock()
		}
	}()
	return nil
}

// attach returns a context that ends when the session ends (announced, or found ended
// by a periodic check) or when parent ends.
func (l *Live) attach(parent context.Context, p identity.Principal, sessions *identity.Sessions) context.Context {
	ctx, cancel := context.WithCancel(parent)
	c := &liveConn{cancel: cancel}
	l.mu.Lock()
	if l.conns[p.SessionID] == nil {
		l.conns[p.SessionID] = map[*liveConn]struct{}{}
	}
	l.conns[p.SessionID][c] = struct{}{}
	l.mu.Unlock()
	go func() {
		t := time.NewTicker(recheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				l.mu.Lock()
				delete(l.conns[p.SessionID], c)
				if len(l.conns[p.SessionID]) == 0 {
					delete(l.conns, p.SessionID)
				}
				l.mu.Unlock()
				return
			case <-t.C:
				if err := sessions.Check(ctx, p); apperr.Is(err, apperr.KindUnauthenticated) {
					cancel()
				}
			}
		}
	}()
	return ctx
}

// websocket is the graphql-transport-ws transport: the upgrade must come from the
// public origin (browsers send Origin; other clients may omit it), and the connection
// authenticates in connection_init unless the upgrade request carried the cookie.
func (r *Resolver) websocket(publicHost string) transport.Websocket {
	return transport.Websocket{
		Implementation: transport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{
			OriginPatterns: []string{publicHost}}},
		KeepAlivePingInterval: 15 * time.Second,
		InitTimeout:           10 * time.Second,
		InitFunc: func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			state := requestFrom(ctx)
			if state.principal == nil {
				token, _ := payload["authorization"].(string)
				if token == "" {
					token, _ = payload["token"].(string)
				}
				token = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(token, "Bearer "), "bearer "))
				if token == "" {
					return ctx, nil, apperr.Unauthenticated(`sign in: send {"authorization": "Bearer <session token>"} in connection_init`)
				}
				p, err := r.Sessions.Authenticate(ctx, token)
				if err != nil {
					return ctx, nil, err
				}
				state.principal = &p
				state.loaders = r.newLoaders(p.TenantID)
				ctx = withPrincipal(ctx, p)
			}
			return r.Live.attach(ctx, *state.principal, r.Sessions), nil, nil
		},
	}
}

func isWebsocket(req *http.Request) bool {
	return strings.EqualFold(req.Header.Get("Upgrade"), "websocket")
}

func toAuditEvent(e audit.Stored) *model.AuditEvent {
	ev := &model.AuditEvent{ID: e.ID, Cursor: cursorOf(strconv.FormatInt(e.Seq, 10)), Seq: int(e.Seq),
		OccurredAt: e.OccurredAt, Action: e.Action,
		Actor:     &model.AuditActor{Type: string(e.ActorType), ID: e.ActorID, Name: e.ActorName},
		Target:    &model.AuditTarget{Type: e.TargetType, ID: e.TargetID, Display: e.TargetDisplay},
		RequestID: e.RequestID, RemoteIP: e.RemoteIP, UserAgent: e.UserAgent, Hash: e.Hash, Changes: []*model.AuditChange{}}
	names := make([]string, 0, len(e.Changes))
	for k := range e.Changes {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		c := e.Changes[k]
		ev.Changes = append(ev.Changes, &model.AuditChange{Attribute: k, Before: jsonText(c.Before), After: jsonText(c.After)})
	}
	return ev
}

func jsonText(v any) *string {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	s := string(b)
	return &s
}

func toAuditFilter(f *model.AuditFilter) audit.Filter {
	if f == nil {
		return audit.Filter{}
	}
	return audit.Filter{Actions: f.Actions, ActorID: deref(f.ActorID), TargetID: deref(f.TargetID), From: f.From, To: f.To}
}

// matches applies a filter to a relayed event (the database applies it to replays).
func matches(f audit.Filter, e audit.Stored) bool {
	if len(f.Actions) > 0 && !slices.Contains(f.Actions, e.Action) {
		return false
	}
	switch {
	case f.ActorID != "" && f.ActorID != e.ActorID,
		f.TargetID != "" && f.TargetID != e.TargetID,
		f.From != nil && e.OccurredAt.Before(*f.From),
		f.To != nil && !e.OccurredAt.Before(*f.To):
		return false
	}
	return true
}

func seqCursor(after *string) (int64, error) {
	raw, err := afterCursor(after)
	if err != nil || raw == "" {
		return 0, err
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, apperr.Invalid("the cursor %q is not an audit event cursor", *after)
	}
	return n, nil
}

// streamAudit replays the tenant's events after afterSeq from the database, then
// relays new ones from the bus, in seq order. The bus subscription starts before the
// replay, so nothing committed in between is missed; a relayed event that skips ahead
// (a message lost, or relayed out of order) makes it read the gap from the database;
// one already sent is dropped. The channel closes when ctx ends (the client stopped,
// or the session ended).
func (r *Resolver) streamAudit(ctx context.Context, v access.Viewer, f audit.Filter, afterSeq int64, fromNow bool) (<-chan *model.AuditEvent, error) {
	live, err := r.Bus.Subscribe(ctx, audit.Topic(v.TenantID))
	if err != nil {
		return nil, apperr.Unavailable(err, "live events are unavailable right now; retry")
	}
	if fromNow {
		if afterSeq, err = r.Audit.Latest(ctx, r.DB, v.TenantID); err != nil {
			return nil, err
		}
	}
	out := make(chan *model.AuditEvent, 64)
	go func() {
		defer close(out)
		last := afterSeq
		send := func(e audit.Stored) bool {
			if e.Seq <= last {
				return true
			}
			last = e.Seq
			if !matches(f, e) {
				return true
			}
			select {
			case out <- toAuditEvent(e):
				return true
			case <-ctx.Done():
				return false
			}
		}
		// catchUp sends everything stored after last, up to upTo (0 = all).
		catchUp := func(upTo int64) bool {
			for {
				page, more, err := r.Audit.Page(ctx, r.DB, v.TenantID, audit.Filter{}, last, 500)
				if err != nil {
					r.Log.WarnContext(ctx, "audit subscription: reading the log failed", "err", err)
					return false
				}
				for _, e := range page {
					if upTo > 0 && e.Seq > upTo {
						return true
					}
					if !send(e) {
						return false
					}
				}
				if !more {
					return true
				}
			}
		}
		if !catchUp(0) {
			return
		}
		for msg := range live {
			var events []audit.Stored
			if json.Unmarshal(msg, &events) != nil {
				continue
			}
			for _, e := range events {
				if e.Seq > last+1 && !catchUp(e.Seq-1) {
					return
				}
				if !send(e) {
					return
				}
			}
		}
	}()
	return out, nil
}
