# Farewell's tasks. `make test` is what CI runs (.ci/run).
GO            ?= go
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
WORKFLOWCHECK := go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
# Every package but e2e, the one whose tests link the Temporal server.
UNIT          = $(shell $(GO) list ./... | grep -v /e2e)
# The packages that do not link the Temporal server at all (devserver and the farewell
# binary do): the race detector runs over these.
NOSERVER      = $(shell $(GO) list ./... | grep -v -e /e2e -e /devserver -e /cmd/)

.PHONY: test unit race race-e2e lint tidy build release release-check dev demo bench histories ui-check faults faults-net soak mutants

## test: lint, tidy, the race detector over the packages that do not link the server,
## then every test (CI runs this)
test: lint tidy race release-check
	$(GO) test -timeout 30m ./...

## unit: every test but the server-linking end-to-end package, for a fast loop
unit:
	$(GO) test $(UNIT)

## race: the race detector over the packages that do not link the server
race:
	$(GO) test -race -timeout 15m $(NOSERVER)

## lint: gofmt check, go vet, staticcheck and workflowcheck (pinned, run with go run)
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(WORKFLOWCHECK) -config workflowcheck.config.yaml ./workflows

## tidy: fail when go.mod or go.sum would change
tidy:
	$(GO) mod tidy -diff
	cd deploy/temporal && $(GO) mod tidy -diff

## build: the binaries in bin/: farewell (everything, with the embedded server) and
## farewell-node (the node command alone, no server), stamped with the commit
build:
	$(GO) build -buildvcs=true -o bin/farewell ./cmd/farewell
	$(GO) build -buildvcs=true -o bin/farewell-node ./cmd/farewell-node

## release: static farewell and farewell-node for linux/amd64 and linux/arm64 in
## RELEASE_DIR (dist/), -trimpath, stamped with the commit, with the systemd units, the
## alerting rules, the dashboard and SHA256SUMS; the same commit gives the same bytes
## (release-check)
RELEASE_DIR ?= dist
PLATFORMS   ?= linux/amd64 linux/arm64
release:
	@rm -rf $(RELEASE_DIR) && mkdir -p $(RELEASE_DIR)
	@for p in $(PLATFORMS); do \
		for c in farewell farewell-node; do \
			echo "$$c $$p"; \
			CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -trimpath -buildvcs=true -ldflags='-s -w' \
				-o $(RELEASE_DIR)/$$c-$${p%/*}-$${p#*/} ./cmd/$$c || exit 1; \
		done; \
	done
	cp deploy/systemd/farewell-worker.service deploy/systemd/farewell-node.service \
		deploy/prometheus/farewell-rules.yml deploy/grafana/farewell.json $(RELEASE_DIR)/
	cd $(RELEASE_DIR) && sha256sum * > SHA256SUMS

## release-check: two releases built from clean clones of HEAD at different paths are
## the same bytes, and their binaries name the commit (RELEASE_CHECK_COLD=1: the second
## with an empty build cache)
release-check:
	./scripts/release-check.sh

## dev: the embedded stack (server, UI, workers, demo nodes) until Ctrl-C
dev:
	$(GO) run ./cmd/farewell dev

## demo: the story of four shutdowns on the embedded stack
demo:
	$(GO) run ./cmd/farewell demo

## bench: the cost table — P0 dispatch tuned vs stock, P1 workflow vs direct, P2 zombie
## bound, P3 drain vs its waves (100 real nodes, and P3k: 1,000 with trivial steps), P4
## throughput, P5 the agent's cost to a host app, P6 many shutdowns under a small budget,
## `farewell dev` start-up — each row measured in one run against its anchor, with the
## command that reproduces it; then the benchmarks of package cluster (a member's cost
## against the cluster's size, gossip propagation)
BENCH_TABLE ?= $(CURDIR)/.farewell/bench-table.md
bench:
	@mkdir -p $(dir $(BENCH_TABLE)) && rm -f $(BENCH_TABLE)
	-FAREWELL_BENCH_TABLE=$(BENCH_TABLE) $(GO) test ./e2e -run '^$$' -bench 'Dispatch' -benchtime 20x -timeout 30m
	-FAREWELL_BENCH_TABLE=$(BENCH_TABLE) $(GO) test ./e2e -run '^$$' -bench 'Shutdown' -benchtime 20x -timeout 30m
	-FAREWELL_BENCH_TABLE=$(BENCH_TABLE) $(GO) test ./e2e -run '^$$' -bench 'ZombieBound' -benchtime 5x -timeout 30m
	-FAREWELL_BENCH_TABLE=$(BENCH_TABLE) $(GO) test ./e2e -run '^$$' -bench 'Drain$$' -benchtime 1x -timeout 30m
	-FAREWELL_BENCH_TABLE=$(BENCH_TABLE) $(GO) test ./e2e -run '^$$' -bench 'DrainFleet' -benchtime 1x -timeout 30m
	-FAREWELL_BENCH_TABLE=$(BENCH_TABLE) $(GO) test ./e2e -run '^$$' -bench 'Throughput' -benchtime 1x -timeout 30m
	-FAREWELL_BENCH_TABLE=$(BENCH_TABLE) $(GO) test ./e2e -run '^$$' -bench 'BudgetQueue' -benchtime 1x -timeout 30m
	-FAREWELL_BENCH_TABLE=$(BENCH_TABLE) $(GO) test ./e2e -run '^$$' -bench 'HostAppCost' -benchtime 1x -timeout 30m
	-FAREWELL_BENCH_TABLE=$(BENCH_TABLE) $(GO) test ./e2e -run '^$$' -bench 'DevStartup' -benchtime 3x -timeout 30m
	-$(GO) test ./cluster -run '^$$' -bench 'MemberCost' -benchtime 1x -timeout 30m
	-$(GO) test ./cluster -run '^$$' -bench 'Propagation|IdleMember' -benchtime 5x -timeout 30m
	@echo; echo "| row | what | result | target | reproduce |"; echo "|---|---|---|---|---|"
	@for id in P0 P1 P2 P3 P3k P4 P5 P6 start-up; do \
		grep -h "^| $$id |" $(BENCH_TABLE) 2>/dev/null || echo "| $$id | | not built (or its benchmark failed: see above) | | |"; \
	done

## histories: regenerate testdata/histories (one real run per outcome) for the replay
## tests; see README "Changing the workflow safely" before you do
histories:
	FAREWELL_WRITE_HISTORIES=$(CURDIR)/testdata/histories $(GO) test ./e2e -run '^TestWriteHistories$$' -count=1 -v

## faults: the whole fault matrix against real processes (farewell dev and farewell node
## subprocesses: SIGKILL, SIGSTOP, restarts) and its table; the rows marked ci also run in
## make test
faults:
	@mkdir -p .farewell && rm -f .farewell/faults-table.md
	@FAREWELL_FAULTS=all FAREWELL_FAULTS_TABLE=$(CURDIR)/.farewell/faults-table.md $(GO) test ./e2e -run '^TestFaultMatrix$$' -count=1 -timeout 30m; \
		code=$$?; cat .farewell/faults-table.md 2>/dev/null; exit $$code

## ui-check: the Temporal UI in headless Chromium — the list through docs/ui.md's link to
## the runs not graceful, a forced run, a graceful one, a drain, a sweep — must show what
## a person needs (needs chromium: apt-get install chromium); UI_SCREENSHOTS=docs/ui
## saves the screenshots docs/ui.md shows
UI_SCREENSHOTS ?=
ui-check:
	FAREWELL_UI_CHECK=1 FAREWELL_UI_SCREENSHOTS=$(UI_SCREENSHOTS) $(GO) test ./e2e -run '^TestUIShowsTheRun$$' -count=1 -v

## faults-net: the nemesis on the production testbed — hosts in network namespaces, Temporal
## on PostgreSQL with its services apart, two orchestrators, a checker on its own host —
## every row and its table (root, and apt-get install -y postgresql); the rows marked
## ci also run in make test
faults-net:
	@mkdir -p .farewell && rm -f .farewell/faults-net-table.md
	@FAREWELL_NETBED=require FAREWELL_FAULTS_NET=all FAREWELL_FAULTS_NET_TABLE=$(CURDIR)/.farewell/faults-net-table.md \
		$(GO) test ./e2e -run '^TestFaultMatrixNet$$' -count=1 -timeout 60m; \
		code=$$?; cat .farewell/faults-net-table.md 2>/dev/null; exit $$code

## soak: shutdowns, SIGTERMs, drains, restarts and faults drawn from SOAK_SEED (the clock
## unless set) for SOAK_DURATION (5m unless set) on the production testbed, each action
## printed as it goes, the checker's verdict at the end
SOAK_DURATION ?= 5m
soak:
	FAREWELL_NETBED=require SOAK_DURATION=$(SOAK_DURATION) SOAK_SEED=$(SOAK_SEED) \
		$(GO) test ./e2e -run '^TestSoak$$' -count=1 -v -timeout 24h

## race-e2e: the race detector over the end-to-end tests where the orchestrator, the
## agent, the drain and the budget run concurrently in one process (slow: it builds the
## server with -race; the time it took is in docs/mutants.md)
RACE_E2E ?= TestShutdownEndToEnd|TestDrainsShareTheBudgetOnARealCluster|TestHostStepsRunUnderTheWorkflowsRules|TestSteerAndCancelFromTheCLI|TestExportReplayRetry|TestTelemetryEndToEnd
race-e2e:
	$(GO) test -race -count=1 -timeout 60m ./e2e -run '^($(RACE_E2E))$$'

## mutants: mutation testing (gremlins, pinned, run with go run) over the packages that
## hold the rules; per package: killed, lived, not covered, efficacy, and every living
## mutant not listed in docs/mutants-ignored.txt (slow: see docs/mutants.md)
GREMLINS     := github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
MUTANTS_PKGS ?= plan activities workflows history starter agent config cluster
MUTANTS_FLAGS ?= --workers 2 --timeout-coefficient 5
# cluster's tests wait on real members (40 s of wall time, under 2 s of CPU): more
# workers at once, and a timeout of some 15 minutes a mutant (gremlins takes it from
# the coverage run, ~45 s uncached, times the coefficient): a mutant that hangs the
# tests costs one worker that long.
MUTANTS_FLAGS_cluster ?= --workers 6 --timeout-coefficient 20
mutants:
	@mkdir -p .farewell
	@$(GO) clean -testcache # a cached coverage run would give gremlins a timeout of seconds
	@set -e; $(foreach p,$(MUTANTS_PKGS),echo "== $(p)"; \
		$(GO) run $(GREMLINS) unleash ./$(p) $(or $(MUTANTS_FLAGS_$(p)),$(MUTANTS_FLAGS)) -s -o $(CURDIR)/.farewell/mutants-$(p).json;)
	@$(GO) run ./internal/mutants $(foreach p,$(MUTANTS_PKGS),.farewell/mutants-$(p).json)
