# The README names two commands: `go run ./cmd/gatehouse serve` and `make test`.
GO ?= go

.PHONY: run test check generate fmt conformance

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
