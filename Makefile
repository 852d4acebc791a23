# Bulkhead: `make run` and `make test` set up a fresh Debian 12 machine themselves.
SHELL := /bin/bash
SWIFT ?= swift
# Debian packages the build needs (system-library targets) and the tests add.
BUILD_PACKAGES := pkg-config libssl-dev libsqlite3-dev libseccomp-dev libhiredis-dev libinih-dev
TEST_PACKAGES := redis-server curl openssl systemd
PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR := $(PREFIX)/sbin
BINDIR := $(PREFIX)/bin
UNITDIR := /etc/systemd/system

.PHONY: all build run test deps test-deps install clean

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

# Binaries, configuration (never overwritten), units and the sysusers/tmpfiles snippets,
# under DESTDIR; then, on a running systemd, creates the group and directories.
install: build
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)/etc/bulkhead $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)/usr/lib/sysusers.d $(DESTDIR)/usr/lib/tmpfiles.d
	install -m 0755 .build/release/bulkheadd .build/release/bulkhead-worker $(DESTDIR)$(SBINDIR)/
	install -m 0755 .build/release/bulkheadctl $(DESTDIR)$(BINDIR)/
	test -e $(DESTDIR)/etc/bulkhead/bulkhead.conf || install -m 0640 etc/bulkhead.conf $(DESTDIR)/etc/bulkhead/bulkhead.conf
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/bulkhead.service > $(DESTDIR)$(UNITDIR)/bulkhead.service
	install -m 0644 systemd/bulkhead.socket $(DESTDIR)$(UNITDIR)/bulkhead.socket
	install -m 0644 systemd/bulkhead.sysusers $(DESTDIR)/usr/lib/sysusers.d/bulkhead.conf
	install -m 0644 systemd/bulkhead.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/bulkhead.conf
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemd-sysusers bulkhead.conf && systemd-tmpfiles --create bulkhead.conf && systemctl daemon-reload; \
		echo "installed: systemctl enable --now bulkhead.service (or bulkhead.socket for socket activation)"; \
	fi

clean:
	rm -rf .build var
