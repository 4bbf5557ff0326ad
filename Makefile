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

# Benchmarks against real PostgreSQL and Redis, found or started like the tests' (the
# script exports their URLs and, with GATEHOUSE_TEST_REQUIRE_SERVICES=1, stops at once if
# either is missing): a few minutes on 2 cores; BENCH_FLAGS=--small is a ~1 minute smoke
# run, --million adds 1M users. Writes the JSON to BENCH_OUT, by default under .tmp/ so
# a run never overwrites the one docs/benchmarks.md cites: pass
# BENCH_OUT=docs/benchmarks.json to replace that on purpose.
BENCH_OUT ?= .tmp/benchmarks.json
bench:
	GATEHOUSE_TEST_REQUIRE_SERVICES=1 ./scripts/test-services.sh sh -c '$(GO) run ./cmd/gatehouse-bench \
		--postgres "$$GATEHOUSE_TEST_POSTGRES_URL" --redis "$$GATEHOUSE_TEST_REDIS_URL" $(BENCH_FLAGS) --out $(BENCH_OUT)'
