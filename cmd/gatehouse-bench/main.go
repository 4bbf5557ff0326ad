// Command gatehouse-bench measures a real Gatehouse deployment: it builds the server,
// creates a throwaway PostgreSQL database, starts two `gatehouse serve` replicas on it
// and on Redis (and, for a while, a third on the in-process cache), sets up a tenant with
// the binary's own CLI, drives SCIM, SAML and GraphQL over HTTP, and writes the figures
// as a table and as JSON. It reports; it asserts nothing.
//
//	go run ./cmd/gatehouse-bench [--small] [--million] [--rev HEAD] [--out .tmp/benchmarks.json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "gatehouse-bench:", err)
		os.Exit(1)
	}
}

// options are the command line of one run.
type options struct {
	small   bool
	million bool
	out     string
	pgURL   string
	redis   string
	rev     string
}

func parseOptions(args []string, getenv func(string) string) (options, error) {
	fs := flag.NewFlagSet("gatehouse-bench", flag.ContinueOnError)
	var o options
	fs.BoolVar(&o.small, "small", false, "a ~1 minute smoke run (10k users, fewer samples)")
	fs.BoolVar(&o.million, "million", false, "also seed the tenant to 1,000,000 users and repeat the lookups (adds minutes; ignored with --small)")
	fs.StringVar(&o.out, "out", "", "write the results as JSON to this file, e.g. .tmp/benchmarks.json (docs/benchmarks.json holds the run docs/benchmarks.md cites)")
	fs.StringVar(&o.pgURL, "postgres", or(getenv("GATEHOUSE_BENCH_POSTGRES_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL server to create the throwaway databases on (GATEHOUSE_BENCH_POSTGRES_URL)")
	fs.StringVar(&o.redis, "redis", or(getenv("GATEHOUSE_BENCH_REDIS_URL"), "redis://127.0.0.1:6379/0"),
		"Redis the replicas share; keys get a unique prefix (GATEHOUSE_BENCH_REDIS_URL)")
	fs.StringVar(&o.rev, "rev", "", "build the server from this git revision (git archive) instead of the working tree, e.g. HEAD")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	// Both services are required: without Redis the replicas would fall back to
	// separate in-process caches and buses, and the cross-replica measurements would
	// fail minutes into the run instead of now.
	if o.pgURL == "" {
		return o, errors.New("--postgres is empty: no PostgreSQL to run on (make bench finds or starts one with scripts/test-services.sh; Debian: apt-get install postgresql)")
	}
	if o.redis == "" {
		return o, errors.New("--redis is empty: no Redis to run on (make bench finds or starts one with scripts/test-services.sh; Debian: apt-get install redis-server)")
	}
	if o.small {
		o.million = false
	}
	return o, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parseOptions(args, getenv)
	if err != nil {
		return err
	}
	b, err := setUp(ctx, o, stdout)
	if b != nil {
		defer b.tearDown()
	}
	if err != nil {
		return err
	}
	rep, err := b.measure(ctx)
	if err != nil {
		return err
	}
	rep.print(stdout)
	if o.out != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(data, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", o.out)
	}
	return nil
}
