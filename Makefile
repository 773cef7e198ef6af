# driftwood: `make cluster` runs it, `make test` proves it. Every target installs what it
# needs first, so both work on a fresh clone with nothing installed by hand.
SHELL := /bin/bash
NPM_FLAGS := --no-audit --no-fund --loglevel=error
TAP_FLAGS ?=

.PHONY: install build lint test test-deps cluster bench sim chaos clean

install: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	npm ci $(NPM_FLAGS)
	touch $@

build: install
	npx tsc -p tsconfig.build.json

lint: install
	npx tsc -p tsconfig.json --noEmit
	npx eslint . --max-warnings 0

# Debian packages the tests use (kcat), installed when missing.
test-deps:
	scripts/install-test-deps.sh

test: build lint test-deps
	npx tap $(TAP_FLAGS)

cluster: build
	node dist/bin/driftwood.js cluster run

bench: build
	node dist/bin/driftwood.js bench all --out bench-results.json

# The long simulator sweep (CI runs a few seeds and property runs; this runs many).
SIM_SEEDS ?= 1..2000
SIM_PROPERTY_RUNS ?= 200
sim: build
	node dist/bin/driftwood.js sim cluster --seeds $(SIM_SEEDS) --nodes 5 --json
	node dist/bin/driftwood.js sim raft --seeds $(SIM_SEEDS) --json
	SIM_PROPERTY_RUNS=$(SIM_PROPERTY_RUNS) npx tap --disable-coverage --timeout 0 test/sim/cluster-properties.test.ts

# Real processes under kill -9, SIGSTOP and cuts (CI runs 30 s of it in test/chaos/chaos.test.ts).
CHAOS_DURATION_S ?= 180
CHAOS_SEED_FLAG := $(if $(CHAOS_SEED),--seed $(CHAOS_SEED),)
chaos: build
	node dist/bin/driftwood.js chaos --duration-s $(CHAOS_DURATION_S) $(CHAOS_SEED_FLAG)

clean:
	rm -rf dist coverage .tap
