# The README names two commands: `go run ./cmd/gatehouse serve` and `make test`.
GO ?= go

.PHONY: run test check generate fmt conformance bench

run:
	$(GO) run ./cmd/gatehouse serve

# Every test, on SQLite and on real PostgreSQL + Redis (found or started by the script).
test:
	./scripts/test-services.sh $(GO) test -count=1 ./...

# What CI checks besides the tests.
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

generate:
	$(GO) generate ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Okta's SCIM 2.0 SPEC test with newman against a freshly started server.
conformance:
	./scripts/conformance.sh

# Benchmarks against real PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379): a few
# minutes on 2 cores; BENCH_FLAGS=--small is a ~1 minute smoke run, --million adds 1M users.
# Writes BENCH_OUT (docs/benchmarks.json); docs/benchmarks.md explains the figures.
BENCH_OUT ?= docs/benchmarks.json
bench:
	$(GO) run ./cmd/gatehouse-bench $(BENCH_FLAGS) --out $(BENCH_OUT)
