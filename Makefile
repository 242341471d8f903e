# Farewell's tasks. `make test` is what CI runs (.ci/run).
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test lint tidy build dev demo bench histories

## test: vet and run every test (CI runs this)
test:
	$(GO) vet ./...
	$(GO) test -timeout 30m ./...

## lint: gofmt check, go vet and staticcheck (pinned)
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## tidy: fail when go.mod or go.sum would change
tidy:
	$(GO) mod tidy -diff

## build: the farewell binary in bin/
build:
	$(GO) build -o bin/farewell ./cmd/farewell

## dev: the embedded stack (server, UI, workers, demo nodes) until Ctrl-C
dev:
	$(GO) run ./cmd/farewell dev

## demo: the story of four shutdowns on the embedded stack
demo:
	$(GO) run ./cmd/farewell demo

## bench: benchmarks that print their figures (gossip propagation, idle member cost,
## dispatch latency tuned vs stock, P1 workflow vs direct shutdown)
bench:
	$(GO) test ./cluster -run '^$$' -bench . -benchtime 5x -timeout 30m
	$(GO) test ./e2e -run '^$$' -bench . -benchtime 20x -timeout 30m

## histories: regenerate testdata/histories (one real run per outcome) for the replay
## tests; see README "Changing the workflow safely" before you do
histories:
	FAREWELL_WRITE_HISTORIES=$(CURDIR)/testdata/histories $(GO) test ./e2e -run '^TestWriteHistories$$' -count=1 -v
