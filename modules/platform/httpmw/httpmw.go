// Package httpmw holds the HTTP middleware every route shares: request ids, request
// metadata for audit, panic recovery and one access-log line per request, and the
// opt-in Server-Timing header.
package httpmw

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/platform/querycount"
	"github.com/gatehouse-dev/gatehouse/modules/platform/reqmeta"
)

// RequestIDHeader is read from trusted proxies and echoed on every response.
const RequestIDHeader = "X-Request-Id"

// A request id from the client is kept only if it is short and plain, so it cannot be
// used to inject into logs.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Wrap applies, outermost first: request metadata, recovery, access log.
func Wrap(log *slog.Logger, h http.Handler) http.Handler {
	return withMeta(recoverer(log, accessLog(log, h)))
}

func withMeta(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		ua := r.UserAgent()
		if len(ua) > 512 {
			ua = ua[:512]
		}
		ctx := reqmeta.With(r.Context(), reqmeta.Meta{RequestID: id, RemoteIP: ip, UserAgent: ua})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request",
					"request_id", reqmeta.From(r.Context()).RequestID, "panic", v, "stack", string(debug.Stack()))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack (websockets, streaming).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog writes one line per request. It logs the path but never the query string or
// headers: those can carry tokens.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			return
		}
		m := reqmeta.From(r.Context())
		log.InfoContext(r.Context(), "http request",
			"request_id", m.RequestID, "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "bytes", rec.bytes,
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "remote_ip", m.RemoteIP)
	})
}

// ServerTimingHeader names the database work of a request (see ServerTiming).
const ServerTimingHeader = "Server-Timing"

// ServerTiming counts the SQL statements each request runs (the database needs
// querycount.Hook) and reports them and their summed time in a Server-Timing header,
// e.g. `db;dur=3.21;desc="7 queries"`, set just before the response's header is sent:
// statements run after that (a streamed body) are not in it. It tells every client
// about the server's internals, so it is only for benchmarks and diagnosis
// (GATEHOUSE_SERVER_TIMING).
func ServerTiming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, c := querycount.With(r.Context())
		tw := &timingWriter{ResponseWriter: w, c: c}
		next.ServeHTTP(tw, r.WithContext(ctx))
		// A handler that wrote nothing: net/http sends the header after it returns.
		tw.stamp()
	})
}

type timingWriter struct {
	http.ResponseWriter
	c       *querycount.Counter
	stamped bool
}

func (t *timingWriter) stamp() {
	if t.stamped {
		return
	}
	t.stamped = true
	ms := float64(t.c.Time().Microseconds()) / 1000
	t.Header().Set(ServerTimingHeader, fmt.Sprintf(`db;dur=%.2f;desc="%d queries"`, ms, t.c.Queries()))
}

func (t *timingWriter) WriteHeader(code int) {
	if code >= 200 { // an informational 1xx is not the response's header
		t.stamp()
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *timingWriter) Write(b []byte) (int, error) {
	t.stamp()
	return t.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack (websockets, streaming).
func (t *timingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
