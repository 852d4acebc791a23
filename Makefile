# Bulkhead: `make run` and `make test` set up a fresh Debian 12 machine themselves.
SHELL := /bin/bash
SWIFT ?= swift
# Debian packages the build needs (system-library targets) and the tests add.
BUILD_PACKAGES := pkg-config libssl-dev libsqlite3-dev libseccomp-dev libhiredis-dev libinih-dev
TEST_PACKAGES := redis-server curl openssl
PREFIX ?= /usr/local

.PHONY: all build run test deps test-deps clean

all: build

# Installs only what is missing, and runs `apt-get update` only then.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt_install,$(BUILD_PACKAGES))

test-deps: deps
	$(call apt_install,$(TEST_PACKAGES))

build: deps
	$(SWIFT) build -c release

run: build
	@mkdir -p var
	@echo "bulkheadd on http://127.0.0.1:8080, state in ./var (Ctrl-C stops it). In another terminal:"
	@echo "  .build/release/bulkheadctl --socket var/control.sock tenant create customer-123 --name \"Acme Corp\""
	@echo "  curl -H 'Authorization: Bearer <API Key>' -H 'Content-Type: application/json' -d '{\"task\":\"analyze\",\"data\":\"hello\"}' http://127.0.0.1:8080/v1/process"
	.build/release/bulkheadd --config etc/bulkhead.dev.conf

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

clean:
	rm -rf .build var
