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
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"

	"github.com/gatehouse-dev/gatehouse/graph/model"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/reqmeta"
)

// Live ties long-lived websocket connections to their sessions: it listens for ended
// sessions on the bus and ends every connection a session authenticated, on every
// replica, the moment the session ends.
type Live struct {
	bus bus.Bus
	log *slog.Logger

	mu    sync.Mutex
	conns map[string]map[*liveConn]struct{} // session id -> connections
}

// NewLive returns the registry; Run must be running for ended sessions to close
// connections at once (a periodic re-check closes them within recheckEvery anyway).
func NewLive(b bus.Bus, log *slog.Logger) *Live {
	return &Live{bus: b, log: log, conns: map[string]map[*liveConn]struct{}{}}
}

// recheckEvery bounds how long a connection outlives its session if an announcement
// is lost (the bus is at most once), and how long an audit subscription outlives its
// viewer's VIEW_AUDIT_LOG permission.
var recheckEvery = 5 * time.Second

// pingEvery is how often a graphql-transport-ws connection is pinged.
var pingEvery = 30 * time.Second

// closeForbidden is the graphql-transport-ws close code for a connection whose
// credential is refused: at connection_init, or when its session ends later. The
// protocol recommends it for a refused connection_init; clients must not reconnect
// with the same credential.
const closeForbidden = 4403

// drainWithin bounds how long an ending connection waits for its subscriptions to
// send their error before it closes.
const drainWithin = 2 * time.Second

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
					c.end()
				}
			}
			l.mu.Unlock()
		}
	}()
	return nil
}

// liveConn is one websocket connection and the session that authenticated it. When
// the session ends, each of its subscriptions ends with an UNAUTHENTICATED error
// (graphql-ws hands it to the subscriber's error callback) and then the connection
// closes with 4403, so a client neither misses why nor reconnects with a dead token.
type liveConn struct {
	cancel context.CancelFunc
	socket *liveSocket

	mu      sync.Mutex
	streams int           // subscriptions streaming on the connection
	ended   chan struct{} // closed when the session has ended
	drained chan struct{} // closed when ended and no subscription is left
	once    sync.Once
}

type liveConnKey struct{}

func liveConnFrom(ctx context.Context) *liveConn {
	c, _ := ctx.Value(liveConnKey{}).(*liveConn)
	return c
}

// end starts closing the connection: its subscriptions see ended and send their
// error, then the socket closes with 4403 (after drainWithin at most).
func (c *liveConn) end() {
	c.once.Do(func() {
		c.mu.Lock()
		close(c.ended)
		if c.streams == 0 {
			close(c.drained)
		}
		c.mu.Unlock()
		go func() {
			select {
			case <-c.drained:
			case <-time.After(drainWithin):
			}
			c.socket.closeWith(closeForbidden, "Forbidden: the session ended")
			c.cancel()
		}()
	})
}

// join registers a subscription; false once the session has ended.
func (c *liveConn) join() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.ended:
		return false
	default:
	}
	c.streams++
	return true
}

// leave unregisters a subscription once the transport has sent its last message.
func (c *liveConn) leave() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streams--
	select {
	case <-c.ended:
		if c.streams == 0 {
			close(c.drained)
		}
	default:
	}
}

// attach returns a context that ends when the session ends (announced, or found ended
// by a periodic check) or when parent ends; it carries the connection for the
// subscriptions started on it.
func (l *Live) attach(parent context.Context, p identity.Principal, sessions *identity.Sessions, socket *liveSocket) context.Context {
	ctx, cancel := context.WithCancel(parent)
	c := &liveConn{cancel: cancel, socket: socket, ended: make(chan struct{}), drained: make(chan struct{})}
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
					c.end()
				}
			}
		}
	}()
	return context.WithValue(ctx, liveConnKey{}, c)
}

// liveSockets accepts websocket connections (coder/websocket, upgrades only from the
// public origin) and wraps each so that the connection can choose its close code:
// gqlgen closes every connection whose context ends with 1000, which graphql-ws
// clients answer by reconnecting.
type liveSockets struct {
	transport.CoderWebsocketImplementation
}

func (i liveSockets) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := i.CoderWebsocketImplementation.Accept(w, r, o)
	if err != nil {
		return nil, err
	}
	s := &liveSocket{WebsocketConn: conn}
	requestFrom(r.Context()).socket = s
	return s, nil
}

// liveSocket is a websocket whose close code and reason can be set before gqlgen
// closes it.
type liveSocket struct {
	transport.WebsocketConn

	mu     sync.Mutex
	code   int
	reason string
}

func (s *liveSocket) closeWith(code int, reason string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.code, s.reason = code, reason
	s.mu.Unlock()
}

func (s *liveSocket) WriteClose(code int, reason string) error {
	s.mu.Lock()
	if s.code != 0 {
		code, reason = s.code, s.reason
	}
	s.mu.Unlock()
	return s.WebsocketConn.WriteClose(code, reason)
}

// SetReadLimit and SetReadDeadline pass gqlgen's limits on to the connection.
func (s *liveSocket) SetReadLimit(n int64) {
	if l, ok := s.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(n)
	}
}

func (s *liveSocket) SetReadDeadline(t time.Time) error {
	if d, ok := s.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

// maxMessageBytes bounds one websocket message, as MaxBodyBytes bounds a POST body.
var maxMessageBytes int64 = MaxBodyBytes

// websocket is the graphql-transport-ws transport: the upgrade must come from the
// public origin (browsers send Origin; other clients may omit it), and the connection
// authenticates in connection_init unless the upgrade request carried the cookie. A
// refused connection_init closes the socket with 4403 and the reason.
func (r *Resolver) websocket(publicHost string) transport.Websocket {
	return transport.Websocket{
		Implementation: liveSockets{transport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{
			OriginPatterns: []string{publicHost}}}},
		KeepAlivePingInterval: 15 * time.Second, // the legacy graphql-ws subprotocol's keep-alive
		// graphql-transport-ws: ping, and close a connection whose client does not answer
		// within two intervals (a vanished client, not only a closed one, lets go).
		PingPongInterval: pingEvery,
		InitTimeout:      10 * time.Second,
		// A message is held to what a POST body is; a larger one closes the connection
		// with 1009 (message too big).
		PayloadReadLimit: &maxMessageBytes,
		InitFunc: func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			state := requestFrom(ctx)
			if state.principal == nil {
				token, _ := payload["authorization"].(string)
				if token == "" {
					token, _ = payload["token"].(string)
				}
				token = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(token, "Bearer "), "bearer "))
				if token == "" {
					return r.refuse(ctx, apperr.Unauthenticated(`sign in: send {"authorization": "Bearer <session token>"} in connection_init`))
				}
				p, err := r.Sessions.Authenticate(ctx, token)
				if err != nil {
					return r.refuse(ctx, err)
				}
				state.principal = &p
				state.loaders = r.newLoaders()
				ctx = withPrincipal(ctx, p)
			}
			return r.Live.attach(ctx, *state.principal, r.Sessions, state.socket), nil, nil
		},
	}
}

// refuse closes a connection at connection_init, saying why in the close reason (cut
// to the 123 bytes a close frame holds): 4403 for a refused credential, 1013 (try
// again later) when the session store is unavailable, 4500 for anything else.
func (r *Resolver) refuse(ctx context.Context, err error) (context.Context, *transport.InitPayload, error) {
	code, reason := 4500, "Internal Server Error"
	switch apperr.KindOf(err) {
	case apperr.KindUnauthenticated, apperr.KindForbidden:
		code, reason = closeForbidden, "Forbidden: "+apperr.PublicMessage(err)
	case apperr.KindUnavailable:
		code, reason = 1013, "Try Again Later: "+apperr.PublicMessage(err)
	default:
		r.Log.ErrorContext(ctx, "websocket connection_init failed", "request_id", reqmeta.From(ctx).RequestID, "err", err)
	}
	for len(reason) > 123 {
		_, size := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-size]
	}
	ctx = transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, code), reason)
	return ctx, nil, err
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

// catchUpEvery is how often a subscription reads the log for events the bus has not
// brought. The bus is at most once (a Redis reconnect or a full buffer loses
// messages), so without it a lost message would hold its event back until the
// tenant's next one, forever on a quiet tenant; with it, at most this long.
var catchUpEvery = time.Second

// streamAudit replays the tenant's events after afterSeq from the database, then
// relays new ones from the bus, in seq order, until ctx ends. The bus subscription
// starts before the replay, so nothing committed in between is missed; a relayed
// event that skips ahead (a message lost, or relayed out of order) makes it read the
// gap from the database, and so does a periodic catch-up (catchUpEvery); one already
// sent is dropped. A subscription that cannot go on ends with an error the client
// sees (graphql-transport-ws "error"): UNAUTHENTICATED when the session ended,
// FORBIDDEN when VIEW_AUDIT_LOG was taken away (re-checked every recheckEvery),
// UNAVAILABLE when the log cannot be read (resubscribe from the last cursor).
// Resuming after events that retention deleted is refused (CURSOR_EXPIRED), and a
// subscription whose next events retention deletes before it sent them ends with it.
func (r *Resolver) streamAudit(ctx context.Context, v access.Viewer, f audit.Filter, afterSeq int64, fromNow bool) (<-chan *model.AuditEvent, error) {
	conn, p := liveConnFrom(ctx), requestFrom(ctx).principal
	if conn == nil || p == nil {
		return nil, apperr.Invalid("subscribe over the graphql-transport-ws websocket protocol at /graphql")
	}
	s := &auditStream{r: r, conn: conn, principal: *p, tenantID: v.TenantID, filter: f}
	// The viewer a connection's operations see was read when the connection's first
	// operation ran; what counts is the permission now.
	if err := s.permitted(ctx); err != nil {
		return nil, err
	}
	live, err := r.Bus.Subscribe(ctx, audit.Topic(v.TenantID))
	if err != nil {
		return nil, apperr.Unavailable(err, "live events are unavailable right now; retry")
	}
	if fromNow {
		if afterSeq, err = r.Audit.Latest(ctx, r.DB, v.TenantID); err != nil {
			return nil, err
		}
	} else if err := r.Audit.CheckResume(ctx, r.DB, v.TenantID, afterSeq); err != nil {
		return nil, err
	}
	if !conn.join() {
		return nil, sessionEnded
	}
	out := make(chan *model.AuditEvent, 64)
	s.last, s.out = afterSeq, out
	go func() {
		if err := s.run(ctx, live); err != nil {
			transport.AddSubscriptionError(ctx, presentError(ctx, r.Log, err))
		}
		close(out)
		// gqlgen ends ctx once it has sent the subscription's last message (the error
		// or complete); only then may an ending session close the connection.
		<-ctx.Done()
		conn.leave()
	}()
	return out, nil
}

var sessionEnded = apperr.Unauthenticated("the session has ended: sign in again")

// auditStream is one audit subscription's position in its tenant's log.
type auditStream struct {
	r         *Resolver
	conn      *liveConn
	principal identity.Principal
	tenantID  string
	filter    audit.Filter
	last      int64 // the last seq sent or skipped
	out       chan<- *model.AuditEvent
}

// run streams until ctx ends (nil) or the subscription cannot go on (why).
func (s *auditStream) run(ctx context.Context, live <-chan []byte) error {
	if _, err := s.catchUp(ctx, 0); err != nil {
		return err
	}
	poll := time.NewTicker(catchUpEvery)
	defer poll.Stop()
	recheck := time.NewTicker(recheckEvery)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.conn.ended:
			return sessionEnded
		case <-recheck.C:
			if err := s.permitted(ctx); err != nil {
				return err
			}
		case <-poll.C:
			if _, err := s.catchUp(ctx, 0); err != nil {
				return err
			}
		case msg, ok := <-live:
			if !ok {
				live = nil // the bus let go; the catch-up carries on alone
				continue
			}
			var events []audit.Stored
			if json.Unmarshal(msg, &events) != nil {
				continue
			}
			if ok, err := s.sessionAlive(ctx); err != nil {
				return err
			} else if !ok {
				continue // the catch-up brings them once the session can be checked
			}
		events:
			for _, e := range events {
				if e.Seq > s.last+1 {
					read, err := s.catchUp(ctx, e.Seq-1)
					if err != nil {
						return err
					}
					if !read {
						// The gap is still unread (the session could not be checked):
						// sending e would skip it for good. The next catch-up brings both.
						break events
					}
				}
				if !s.send(ctx, e) {
					return nil
				}
			}
		}
	}
}

// sessionAlive checks the subscription's session before events go out, so none reaches
// it once a revocation or deprovisioning has been answered, on any replica: the ended
// session's cache entry is buried before the answer, and the announcement that closes
// the connection may still be on its way. It is false (send nothing now) when the session
// cannot be checked, and an error when it has ended.
func (s *auditStream) sessionAlive(ctx context.Context) (bool, error) {
	err := s.r.Sessions.Check(ctx, s.principal)
	switch {
	case err == nil:
		return true, nil
	case apperr.Is(err, apperr.KindUnauthenticated):
		return false, sessionEnded
	default:
		s.r.Log.WarnContext(ctx, "audit subscription: the session could not be checked; holding events back", "err", err)
		return false, nil
	}
}

// permitted re-reads the viewer's permissions: a subscription lasts as long as
// VIEW_AUDIT_LOG does.
func (s *auditStream) permitted(ctx context.Context) error {
	v, err := s.r.Access.Viewer(ctx, s.principal)
	switch {
	case apperr.Is(err, apperr.KindUnauthenticated):
		return sessionEnded
	case err != nil:
		// Not known to be lost: keep streaming and look again next time.
		s.r.Log.WarnContext(ctx, "audit subscription: re-checking the permission failed", "err", err)
		return nil
	case !v.Can(access.PermViewAuditLog):
		return apperr.Forbidden("this needs the %s permission, which was taken away", access.PermViewAuditLog).WithCode("FORBIDDEN")
	}
	return nil
}

// send hands e to the subscriber when it matches the filter; false when ctx ended.
func (s *auditStream) send(ctx context.Context, e audit.Stored) bool {
	if e.Seq <= s.last {
		return true
	}
	s.last = e.Seq
	if !matches(s.filter, e) {
		return true
	}
	select {
	case s.out <- toAuditEvent(e):
		return true
	case <-ctx.Done():
		return false
	}
}

// catchUp sends everything stored after last, up to upTo (0 = all), and says whether
// it did (false: the session could not be checked, or ctx ended); it ends the
// subscription (CURSOR_EXPIRED) when the events right after last are no longer stored.
func (s *auditStream) catchUp(ctx context.Context, upTo int64) (bool, error) {
	for {
		page, more, err := s.r.Audit.Page(ctx, s.r.DB, s.tenantID, audit.Filter{}, s.last, audit.MaxPage)
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			s.r.Log.WarnContext(ctx, "audit subscription: reading the log failed", "err", err)
			return false, apperr.Unavailable(err, "reading the audit log failed: subscribe again from your last cursor")
		}
		if len(page) > 0 {
			if ok, err := s.sessionAlive(ctx); !ok {
				return false, err
			}
		}
		for _, e := range page {
			if s.last > 0 && e.Seq > s.last+1 {
				// The log has no gaps, so the events in between were deleted since the
				// subscription started (retention): refuse to skip them silently, as a
				// resume after them is refused.
				return false, apperr.Invalid("the events after #%d (#%d to #%d) were deleted by the audit retention before this subscription sent them: start again from the oldest event kept (after: \"\")", s.last, s.last+1, e.Seq-1).WithCode(audit.CursorExpired)
			}
			if upTo > 0 && e.Seq > upTo {
				return true, nil
			}
			if !s.send(ctx, e) {
				return false, nil
			}
		}
		if !more {
			return true, nil
		}
	}
}
