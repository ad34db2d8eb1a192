# Repave: every target installs what it needs first (scripts/deps), so a fresh Debian machine
# needs nothing but this checkout.
SHELL := /bin/bash
LAB_DIR ?= $(CURDIR)/.lab/dev
LAB_NODES ?= simulated

.PHONY: all deps build lab-build lab-up lab-down test proof demo bench clean

all: build

deps:
	@scripts/deps

build: deps
	swift build

lab-build: deps
	@scripts/lab build >/dev/null

# The README's test command (and CI's): unit, integration and end-to-end tests against a lab
# cluster started for this run and stopped afterwards, whatever the tests' outcome; then ten
# seconds of fuzzing per parser; then the installed tool (scripts/test-install, one static build).
test: deps lab-build
	@scripts/test
	@scripts/fuzz --time 10
	@scripts/test-install

# The full proof matrices (every crash point twice, 50 fault seeds per rate, 10 minutes of fuzzing
# per parser) with the figures docs/reliability.md quotes: about 45 minutes on 2 cores.
proof: deps lab-build
	@scripts/proof

# A lab cluster that stays up for interactive use: eval "$$(scripts/lab env $(LAB_DIR))".
# Simulated nodes unless LAB_NODES=real (make lab-up LAB_NODES=real): see docs/lab.md.
lab-up: deps lab-build build
	@LAB_NODES=$(LAB_NODES) scripts/lab up $(LAB_DIR)

lab-down:
	@scripts/lab down $(LAB_DIR)

# Benchmarks against the alternatives; each prints both figures and the ratio, then one summary
# table (BENCHMARKS.md). They also need hyperfine, jq and GNU time.
bench: deps lab-build
	@REPAVE_EXTRA_DEPS="hyperfine jq time" scripts/deps
	@bench/run

# The devpod maintenance on a lab cluster, end to end (scripts/demo).
demo: deps lab-build build
	@scripts/demo

# Install (scripts/package): the self-contained release binary in .build-static, make install /
# uninstall (PREFIX, DESTDIR as usual), the Debian package. scripts/test-install tests them.
PREFIX ?= /usr/local
DESTDIR ?=
.PHONY: static install uninstall deb

static: deps
	@scripts/package static

install: static
	@scripts/package install "$(DESTDIR)" "$(PREFIX)"

uninstall:
	@scripts/package uninstall "$(DESTDIR)" "$(PREFIX)"

deb: static
	@REPAVE_EXTRA_DEPS="lintian dpkg-dev" scripts/deps
	@deb=$$(scripts/package deb) && lintian --fail-on error "$$deb" && echo "$$deb"

# Every lab under .lab/ goes down first (processes, mounts, a real node's cgroups and host files),
# so nothing is left running on files that are about to be removed.
clean:
	@for d in .lab/*/; do [[ -f $$d/.repave-lab ]] && scripts/lab down "$$d"; done; true
	rm -rf .build .build-static .lab
