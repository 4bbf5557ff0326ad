package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/graph"
	"github.com/gatehouse-dev/gatehouse/migrations"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/httpmw"
	"github.com/gatehouse-dev/gatehouse/modules/platform/querycount"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ratelimit"
	"github.com/gatehouse-dev/gatehouse/modules/scim"
	"github.com/gatehouse-dev/gatehouse/modules/sso"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

func cmdServe(ctx context.Context, e env) error {
	cfg, args, err := parse(e, "serve", flag.NewFlagSet("serve", flag.ContinueOnError))
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", args)
	}
	log := newLogger(cfg, e.stderr)
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("server stopped with an error", "err", err)
		return err
	}
	return nil
}

// server is the composition root's product: every long-lived dependency, built in order
// and closed in reverse.
type server struct {
	cfg      config.Config
	log      *slog.Logger
	db       *bun.DB
	cache    cache.Cache
	clock    clock.Clock
	audit    *audit.Log
	tenancy  *tenancy.Service
	identity *identity.Service
	sessions *identity.Sessions
	keys     *keys.Store
	access   *access.Service
	bus      bus.Bus
	live     *graph.Live
}

// auditRelayEvery is how often the outbox is polled on SQLite: the bound on how long a
// committed audit event waits before live subscribers see it. On PostgreSQL the relay is
// woken by each commit and polls only as a fallback (audit.RunRelay).
const auditRelayEvery = 20 * time.Millisecond

// openBus returns Redis pub/sub when the cache is Redis, else the in-process bus.
func openBus(c cache.Cache, cfg config.Config) bus.Bus {
	if r, ok := c.(*cache.Redis); ok {
		return bus.NewRedis(r.Client(), cfg.RedisPrefix)
	}
	return bus.NewMemory()
}

// openLimiter holds rate limits in Redis when the cache is Redis (one budget across
// replicas), else in this process.
func openLimiter(c cache.Cache, cfg config.Config, log *slog.Logger) ratelimit.Limiter {
	if r, ok := c.(*cache.Redis); ok {
		return ratelimit.NewRedis(r.Client(), cfg.RedisPrefix, log)
	}
	return ratelimit.NewMemory()
}

// auditPruneEvery is how often each tenant's audit retention is applied.
var auditPruneEvery = time.Hour

// pruneAuditLogs applies each tenant's audit retention every auditPruneEvery (and at
// start). Every replica may run it: pruning is idempotent.
func (s *server) pruneAuditLogs(ctx context.Context) {
	t := time.NewTicker(auditPruneEvery)
	defer t.Stop()
	for {
		tenants, err := s.tenancy.ListTenants(ctx)
		if err == nil {
			var ps []audit.RetentionPolicy
			for _, tn := range tenants {
				if tn.AuditRetentionDays > 0 {
					ps = append(ps, audit.RetentionPolicy{TenantID: tn.ID, Days: tn.AuditRetentionDays})
				}
			}
			var n int
			if n, err = s.audit.PruneExpired(ctx, s.db, ps, s.clock.Now()); n > 0 {
				s.log.Info("audit retention: pruned old events", "events", n)
			}
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("audit retention failed; will retry", "in", auditPruneEvery.String(), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func openCache(ctx context.Context, cfg config.Config, log *slog.Logger) (cache.Cache, error) {
	cache.LogTo(log)
	if cfg.RedisURL == "" {
		return cache.NewMemory(), nil
	}
	return cache.NewRedis(ctx, cfg.RedisURL, cfg.RedisPrefix)
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	started := time.Now()
	bdb, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer func() {
		bdb.Close()
		log.Info("database closed")
	}()
	if cfg.ServerTiming {
		// Before anything else uses the database: adding a hook is not safe for
		// concurrent use.
		bdb.AddQueryHook(querycount.Hook{})
	}
	if cfg.AutoMigrate {
		applied, err := migrations.Up(ctx, bdb)
		if err != nil {
			return fmt.Errorf("migrating the database: %w", err)
		}
		for _, n := range applied {
			log.Info("applied migration", "name", n)
		}
	} else if err := requireMigrated(ctx, bdb); err != nil {
		return err
	}
	c, err := openCache(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		c.Close()
		log.Info("cache closed")
	}()

	clk := clock.System{}
	auditLog := audit.New(clk)
	keyStore, err := keys.New(bdb, clk, cfg.SecretKey)
	if err != nil {
		return err
	}
	if !keyStore.Sealed() {
		log.Warn("signing keys are stored unsealed in the database; set GATEHOUSE_SECRET_KEY (openssl rand -base64 32) to seal them")
	}
	ten := tenancy.New(bdb, clk, auditLog, net.DefaultResolver)
	ten.AllowPrivateMetadataURLs(cfg.SAMLMetadataAllowPrivate)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (GATEHOUSE_LISTEN): %w", cfg.Listen, err)
	}
	if cfg.PublicURLDerived {
		// The port actually bound (the listen address may say :0); the host stays
		// the derived one (localhost when listening on every interface).
		host, _, _ := net.SplitHostPort(cfg.PublicURL.Host)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		cfg.PublicURL.Host = net.JoinHostPort(host, port)
	}
	ids := identity.New(bdb, clk, auditLog, c, log)
	s := &server{cfg: cfg, log: log, db: bdb, cache: c, clock: clk, audit: auditLog, tenancy: ten, identity: ids, keys: keyStore,
		sessions: ids.Sessions(keyStore, identity.SessionsConfig{Issuer: cfg.PublicURL.String()}),
		access:   access.New(bdb, clk, auditLog, ids, access.WithTenancy(ten))}
	// Background work runs until the HTTP server has drained, then stops before the
	// cache and the database close.
	watchCtx, stopWatching := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatching()
	s.bus = openBus(c, cfg)
	if err := ten.ShareChanges(watchCtx, s.bus, log); err != nil {
		ln.Close()
		return fmt.Errorf("subscribing to the bus: %w", err)
	}
	ids.AnnounceEndedSessions(s.bus)
	ids.WatchEndedSessions(watchCtx)
	s.live = graph.NewLive(s.bus, log)
	if err := s.live.Run(watchCtx); err != nil {
		ln.Close()
		return fmt.Errorf("subscribing to the bus: %w", err)
	}
	go auditLog.RunRelay(watchCtx, log, bdb, s.bus, auditRelayEvery)
	go s.pruneAuditLogs(watchCtx)
	// Create the signing keys now rather than on the first sign-in, so a sealing
	// misconfiguration stops the server at start instead of failing a user later.
	for _, p := range keys.Purposes {
		if _, err := keyStore.Active(ctx, p); err != nil {
			ln.Close()
			return fmt.Errorf("loading the %s signing key: %w", p, err)
		}
	}
	routes, err := s.routes()
	if err != nil {
		return err
	}
	if cfg.ServerTiming {
		routes = httpmw.ServerTiming(routes)
		log.Warn("GATEHOUSE_SERVER_TIMING is on: every response tells the client how many SQL statements it ran and for how long")
	}
	srv := &http.Server{
		Handler:           httpmw.Wrap(log, routes),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	dbTarget, _ := db.ParseURL(cfg.DatabaseURL)
	log.Info("gatehouse is listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL.String(),
		"database", dbTarget.Dialect, "cache", c.Kind(), "startup_ms", time.Since(started).Milliseconds())
	s.logNextSteps(ctx)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("requests still running at the shutdown deadline were cut off", "err", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("http server stopped")
	return nil
}

// logNextSteps tells a new user what to do next, in the log they are already reading.
func (s *server) logNextSteps(ctx context.Context) {
	tenants, err := s.tenancy.ListTenants(ctx)
	if err != nil {
		return
	}
	if len(tenants) == 0 {
		s.log.Info("no tenants yet; create one, give its IdP a SCIM token and its SAML metadata, and name its first owner",
			"step1", `gatehouse tenant create --slug acme --name "Acme Inc" --features user_groups`,
			"step2", `gatehouse scim-token issue --tenant acme --name "Okta"`,
			"step3", `gatehouse saml configure --tenant acme --metadata-url https://<your IdP's metadata URL>`,
			"step4", `gatehouse role set --tenant acme --user ada@acme.com --role owner`)
	}
	endpoints := []any{"scim_base_url", s.cfg.URL(scimRoot), "graphql", s.cfg.URL("/graphql"),
		"saml_sp_metadata", s.cfg.URL("/saml/{tenant}/metadata"), "sign_in", s.cfg.URL("/saml/{tenant}/login"),
		"health", s.cfg.URL("/healthz"), "ready", s.cfg.URL("/readyz")}
	if s.cfg.GraphiQL {
		endpoints = append(endpoints, "graphiql", s.cfg.URL("/graphql")+" (GET in a browser)")
	}
	s.log.Info("endpoints", endpoints...)
}

// scimRoot is where the SCIM API is mounted.
const scimRoot = "/scim/v2"

func (s *server) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	scimHandler, err := scim.New(scim.Config{BaseURL: s.cfg.URL(scimRoot), MaxBodyBytes: s.cfg.SCIMMaxBodyBytes,
		Limiter: openLimiter(s.cache, s.cfg, s.log), RateLimit: s.cfg.SCIMRateLimit},
		s.log, s.tenancy, s.identity, s.access)
	if err != nil {
		return nil, err
	}
	mux.Handle(scimRoot+"/", http.StripPrefix(scimRoot, scimHandler))
	ssoHandler := sso.New(sso.Config{PublicURL: s.cfg.PublicURL, ClockSkew: s.cfg.SAMLClockSkew, MaxBodyBytes: s.cfg.SAMLMaxBodyBytes},
		s.log, sso.Deps{DB: s.db, Clock: s.clock, Cache: s.cache, Audit: s.audit,
			Tenancy: s.tenancy, Identity: s.identity, Sessions: s.sessions, Keys: s.keys})
	for _, p := range sso.Routes {
		mux.Handle(p, ssoHandler)
	}
	mux.Handle("/graphql", graph.NewHandler(&graph.Resolver{Tenancy: s.tenancy, Identity: s.identity, Sessions: s.sessions,
		Access: s.access, PublicURL: s.cfg.PublicURL.String(), SP: ssoHandler,
		Audit: s.audit, DB: s.db, Bus: s.bus, Live: s.live, Log: s.log},
		graph.HandlerConfig{Introspection: s.cfg.GraphQLIntrospection, GraphiQL: s.cfg.GraphiQL}, s.log, ssoHandler))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	return mux, nil
}

// ready answers 200 only when the database and the cache both answer within two
// seconds, so a load balancer stops sending traffic to a replica that cannot serve it.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "cache": "ok"}
	status := http.StatusOK
	if err := s.db.PingContext(ctx); err != nil {
		checks["database"] = "unreachable"
		status = http.StatusServiceUnavailable
		s.log.WarnContext(ctx, "readiness: database unreachable", "err", err)
	}
	if err := s.cache.Ping(ctx); err != nil {
		checks["cache"] = "unreachable"
		status = http.StatusServiceUnavailable
		s.log.WarnContext(ctx, "readiness: cache unreachable", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"ready": status == http.StatusOK, "checks": checks})
}
