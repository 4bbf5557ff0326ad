package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/reqmeta"
)

// Limits of one GraphQL request; each is enforced with a clear error.
const (
	// MaxComplexity bounds the fields an operation may resolve, pages weighed by their
	// size (complexity.go): a page of 100 users with some 40 fields and lists each fits,
	// a page of users with the members of each of their groups does not.
	MaxComplexity = 5000
	MaxDepth      = 12
	// MaxExpandedFields bounds the fields an operation selects once every fragment
	// spread is expanded (a field spread twice counts twice): far above what a query
	// within MaxComplexity selects, and it keeps the complexity check itself cheap.
	MaxExpandedFields = 10 * MaxComplexity
	MaxParserTokens   = 5000
	MaxBodyBytes      = 256 << 10
	queryCacheLength  = 1000
	// apqCacheLength bounds the automatic-persisted-query cache (hash -> query).
	apqCacheLength = 1000
)

// HandlerConfig chooses what the endpoint exposes.
type HandlerConfig struct {
	// Introspection enables schema introspection and "did you mean" suggestions; off in
	// production so the schema is not handed to strangers.
	Introspection bool
	// GraphiQL serves the GraphiQL IDE on GET.
	GraphiQL bool
}

// NewHandler returns the GraphQL HTTP handler: POST (and GET for GraphiQL when
// enabled), authenticated by auth, with complexity, depth, token and body limits,
// automatic persisted queries, per-request dataloaders, and errors mapped to
// extensions.code.
func NewHandler(r *Resolver, cfg HandlerConfig, log *slog.Logger, auth Authenticator) http.Handler {
	srv := handler.New(NewExecutableSchema(Config{Resolvers: r, Complexity: complexity()}))
	public, _ := url.Parse(r.PublicURL)
	if public != nil && r.Live != nil {
		srv.AddTransport(r.websocket(public.Host))
	}
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheLength))
	srv.SetParserTokenLimit(MaxParserTokens)
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](apqCacheLength)})
	srv.Use(noNUL{})
	// Before the complexity check, which walks every expanded fragment spread.
	srv.Use(depthLimit{max: MaxDepth, maxFields: MaxExpandedFields})
	srv.Use(extension.FixedComplexityLimit(MaxComplexity))
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(noIntrospection{})
	}
	srv.SetDisableSuggestion(!cfg.Introspection)
	srv.AroundOperations(r.perOperation)
	srv.SetErrorPresenter(func(ctx context.Context, err error) *gqlerror.Error {
		return presentError(ctx, log, err)
	})
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		log.ErrorContext(ctx, "panic in GraphQL resolver", "request_id", reqmeta.From(ctx).RequestID, "panic", v)
		return errors.New("internal error")
	})
	var ide http.Handler
	if cfg.GraphiQL {
		ide = playground.Handler("Gatehouse GraphQL", "/graphql")
	}
	api := limitBody(r.withRequest(log, auth, srv))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == http.MethodGet && isWebsocket(req) && !websocketOriginAllowed(req, public):
			// Refused here, in GraphQL's error format, rather than by the websocket
			// library, which answers with plain text and logs through the standard logger.
			writeError(w, http.StatusForbidden, "FORBIDDEN", "websocket refused: open it from a page of "+public.Scheme+"://"+public.Host)
		case req.Method == http.MethodGet && isWebsocket(req):
			// A subscription lives longer than the server's request timeouts allow.
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
			api.ServeHTTP(w, req)
		case req.Method == http.MethodPost && !isJSON(req):
			writeError(w, http.StatusUnsupportedMediaType, "BAD_REQUEST", "send the request as JSON, with Content-Type: application/json")
		case req.Method == http.MethodPost:
			api.ServeHTTP(w, req)
		case req.Method == http.MethodGet && ide != nil:
			ide.ServeHTTP(w, req)
		default:
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "BAD_REQUEST", "send GraphQL requests as POST (GraphiQL on GET is off: GATEHOUSE_GRAPHIQL)")
		}
	})
}

// websocketOriginAllowed applies the websocket library's own rule, so that a refusal is
// ours: a browser's upgrade must come from the public origin's host or the host it
// connected to; clients that are not browsers send no Origin and are let through (they
// carry no ambient credential to misuse).
func websocketOriginAllowed(req *http.Request, public *url.URL) bool {
	o := req.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, req.Host) || (public != nil && strings.EqualFold(u.Host, public.Host))
}

func isJSON(req *http.Request) bool {
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// withRequest authenticates the request and gives it its per-request state (viewer,
// dataloaders). A request without a credential goes on anonymous: only public fields
// answer it. A bad credential is refused before any resolver runs.
func (r *Resolver) withRequest(log *slog.Logger, auth Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		state := &request{}
		ctx := req.Context()
		p, ok, err := auth.Principal(req)
		if err != nil {
			refuseCredential(ctx, w, log, err)
			return
		}
		if ok {
			state.principal = &p
			state.loaders = r.newLoaders()
			ctx = withPrincipal(ctx, p)
		}
		next.ServeHTTP(w, req.WithContext(context.WithValue(ctx, requestKey{}, state)))
	})
}

// perOperation gives every operation on a websocket its own request state, as each POST
// has: the viewer is read again (permissions as they are now, not as when the socket
// opened) and the dataloaders start empty (no data cached by an earlier operation). It
// also checks, before each operation, that the connection's session is still alive.
func (r *Resolver) perOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	conn := requestFrom(ctx)
	if conn.socket == nil || conn.principal == nil {
		return next(ctx)
	}
	if err := r.Sessions.Check(ctx, *conn.principal); err != nil {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{presentError(ctx, r.Log, err)}})
	}
	op := &request{principal: conn.principal, socket: conn.socket, loaders: r.newLoaders()}
	return next(context.WithValue(ctx, requestKey{}, op))
}

// refuseCredential answers a request whose credential could not be accepted: 401 for a
// bad or ended session, 403 for a cross-site cookie request, and — when the session
// could not be checked at all — 503 UNAVAILABLE (retry) or 500 INTERNAL, logged with
// the request id, so a failing session store is seen by operators and not mistaken by
// clients for a signed-out user.
func refuseCredential(ctx context.Context, w http.ResponseWriter, log *slog.Logger, err error) {
	id := reqmeta.From(ctx).RequestID
	switch apperr.KindOf(err) {
	case apperr.KindUnauthenticated:
		writeError(w, http.StatusUnauthorized, codeOf(err), apperr.PublicMessage(err))
	case apperr.KindForbidden:
		writeError(w, http.StatusForbidden, codeOf(err), apperr.PublicMessage(err))
	case apperr.KindUnavailable:
		log.WarnContext(ctx, "graphql: the session could not be checked", "request_id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", apperr.PublicMessage(err))
	default:
		log.ErrorContext(ctx, "graphql: the session check failed", "request_id", id, "err", err)
		writeError(w, http.StatusInternalServerError, "INTERNAL", "internal error")
	}
}

// withPrincipal returns ctx carrying p as the principal and the audit actor.
func withPrincipal(ctx context.Context, p identity.Principal) context.Context {
	ctx = identity.WithPrincipal(ctx, p)
	return audit.WithActor(ctx, audit.Actor{Type: audit.ActorUser, ID: p.UserID})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}}})
}

// limitBody answers 413 with a GraphQL error when the body is over MaxBodyBytes: at once
// when Content-Length says so, else once MaxBodyBytes+1 bytes have arrived (a chunked
// body). The body is read here, whole, so the transport never meets a cut-off body.
func limitBody(next http.Handler) http.Handler {
	tooLarge := func(w http.ResponseWriter) {
		writeError(w, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "the request body is larger than "+strconv.Itoa(MaxBodyBytes)+" bytes")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			tooLarge(w)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		switch {
		case err != nil:
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", "the request body could not be read")
			return
		case len(body) > MaxBodyBytes:
			tooLarge(w)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// codes maps error kinds to extensions.code.
var codes = map[apperr.Kind]string{
	apperr.KindInvalid:            "BAD_USER_INPUT",
	apperr.KindNotFound:           "NOT_FOUND",
	apperr.KindConflict:           "CONFLICT",
	apperr.KindForbidden:          "FORBIDDEN",
	apperr.KindUnauthenticated:    "UNAUTHENTICATED",
	apperr.KindPreconditionFailed: "PRECONDITION_FAILED",
	apperr.KindUnavailable:        "UNAVAILABLE",
}

// codeOf is the extensions.code of a module error: its own code when it is a product
// code (UPPER_CASE, e.g. SCIM_MANAGED, FEATURE_NOT_IN_PLAN), else its kind's. Lower-case
// codes are SCIM scimTypes and mean nothing here.
func codeOf(err error) string {
	if c := apperr.CodeOf(err); c != "" && c == strings.ToUpper(c) {
		return c
	}
	if c, ok := codes[apperr.KindOf(err)]; ok {
		return c
	}
	return "INTERNAL"
}

// presentError shows module errors by kind and hides everything else: internal errors
// are logged with the request id and shown as "internal error".
func presentError(ctx context.Context, log *slog.Logger, err error) *gqlerror.Error {
	gerr := graphql.DefaultErrorPresenter(ctx, err)
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.Kind != apperr.KindInternal {
		if ae.Kind == apperr.KindUnavailable {
			log.WarnContext(ctx, "graphql: a dependency is unavailable", "request_id", reqmeta.From(ctx).RequestID, "err", err)
		}
		gerr.Message = ae.Message
		gerr.Extensions = map[string]any{"code": codeOf(err)}
		return gerr
	}
	var ge *gqlerror.Error
	if errors.As(err, &ge) && ge.Err == nil {
		// Parse, validation and limit errors from gqlgen itself: safe to show.
		if gerr.Extensions == nil {
			gerr.Extensions = map[string]any{}
		}
		if _, ok := gerr.Extensions["code"]; !ok {
			gerr.Extensions["code"] = "BAD_REQUEST"
		}
		return gerr
	}
	log.ErrorContext(ctx, "graphql request failed", "request_id", reqmeta.From(ctx).RequestID, "err", err)
	gerr.Message = "internal error"
	gerr.Extensions = map[string]any{"code": "INTERNAL"}
	return gerr
}
