package graph

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/reqmeta"
)

// Limits of one GraphQL request; each is enforced with a clear error.
const (
	MaxComplexity    = 500
	MaxParserTokens  = 5000
	MaxBodyBytes     = 256 << 10
	queryCacheLength = 1000
)

// HandlerConfig chooses what the endpoint exposes.
type HandlerConfig struct {
	// Introspection enables schema introspection and "did you mean" suggestions; off in
	// production so the schema is not handed to strangers.
	Introspection bool
}

// NewHandler returns the GraphQL HTTP handler: POST only, with complexity, token and
// body limits, and errors mapped to extensions.code.
func NewHandler(r *Resolver, cfg HandlerConfig, log *slog.Logger) http.Handler {
	srv := handler.New(NewExecutableSchema(Config{Resolvers: r}))
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheLength))
	srv.SetParserTokenLimit(MaxParserTokens)
	srv.Use(extension.FixedComplexityLimit(MaxComplexity))
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.SetDisableSuggestion(!cfg.Introspection)
	srv.SetErrorPresenter(func(ctx context.Context, err error) *gqlerror.Error {
		return presentError(ctx, log, err)
	})
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		log.ErrorContext(ctx, "panic in GraphQL resolver", "request_id", reqmeta.From(ctx).RequestID, "panic", v)
		return errors.New("internal error")
	})
	return limitBody(srv)
}

// limitBody answers 413 with a GraphQL error when the body is over MaxBodyBytes: at once
// when Content-Length says so, and through MaxBytesReader for bodies of unknown length.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_, _ = w.Write([]byte(`{"errors":[{"message":"the request body is larger than ` + strconv.Itoa(MaxBodyBytes) +
				` bytes","extensions":{"code":"REQUEST_TOO_LARGE"}}]}`))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
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

// presentError shows module errors by kind and hides everything else: internal errors
// are logged with the request id and shown as "internal error".
func presentError(ctx context.Context, log *slog.Logger, err error) *gqlerror.Error {
	gerr := graphql.DefaultErrorPresenter(ctx, err)
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.Kind != apperr.KindInternal {
		gerr.Message = ae.Message
		gerr.Extensions = map[string]any{"code": codes[ae.Kind]}
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
