# driftwood: `make cluster` runs it, `make test` proves it. Every target installs what it
# needs first, so both work on a fresh clone with nothing installed by hand.
SHELL := /bin/bash
NPM_FLAGS := --no-audit --no-fund --loglevel=error
TAP_FLAGS ?=

.PHONY: install build lint test cluster bench clean

install: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	npm ci $(NPM_FLAGS)
	touch $@

build: install
	npx tsc -p tsconfig.build.json

lint: install
	npx tsc -p tsconfig.json --noEmit
	npx eslint . --max-warnings 0

test: build lint
	npx tap $(TAP_FLAGS)

cluster: build
	node dist/bin/driftwood.js cluster

bench: build
	node dist/bin/driftwood.js bench storage

clean:
	rm -rf dist coverage .tap
