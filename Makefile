# edgescope: the two commands of the README are `make demo` and `make test`.
# Every target installs what it needs first, so each works on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := rabbitmq-server mariadb-server iptables nftables iproute2 iputils-ping haproxy curl libnetfilter-queue-dev systemd \
  chromium chromium-driver \
  openvswitch-switch ovn-central ovn-host ceph-mon ceph-osd ceph-common python3-rados python3-rbd qemu-utils \
  swift swift-proxy swift-account swift-container swift-object python3-swiftclient memcached \
  python3-keystonemiddleware
PYTEST_ARGS ?=

.PHONY: demo test test-fast check-install lint typecheck bench setup system-deps venv openstack console-assets ceph-bindings clean

demo: setup
	$(BIN)/edgescope demo

# pytest's output is kept in artifacts/pytest-<UTC time>.log (pipefail: tee keeps pytest's exit
# status); tests/ci_tiers.py ends it with a count per tier, also in artifacts/test-tiers.json.
# mypy and check-install run beside pytest, not before it: they use one core at most and wait
# on the network, and pytest's fast tier leaves the second core mostly idle. Their output goes
# to artifacts/{typecheck,check-install}.log; after pytest, a failure of either shows its log
# and fails the target, as pytest's does (ruff, seconds, still runs first).
BESIDE := typecheck check-install
test: setup lint
	@mkdir -p artifacts
	@rm -f $(BESIDE:%=artifacts/%.status)
	@for t in $(BESIDE); do \
	  { $(MAKE) -s --no-print-directory $$t >artifacts/$$t.log 2>&1; echo $$? >artifacts/$$t.status; } & \
	done; \
	set -o pipefail; $(BIN)/pytest $(PYTEST_ARGS) 2>&1 | tee artifacts/pytest-$$(date -u +%Y%m%dT%H%M%SZ).log; \
	status=$$?; wait; \
	for t in $(BESIDE); do \
	  if [ "$$(cat artifacts/$$t.status 2>/dev/null)" = 0 ]; then echo "make $$t (beside pytest): passed, artifacts/$$t.log"; \
	  else echo "make $$t (beside pytest) FAILED: artifacts/$$t.log"; sed 's/^/    /' artifacts/$$t.log; status=1; fi; \
	done; \
	exit $$status

# The wheel in a new venv without extras: its commands, a proxy with a call through it, the
# OpenStackClient plugin (.ci/check-install). A dependency used but not declared fails here.
check-install:
	PYTHON=$(PYTHON) .ci/check-install

# The fast tier: no OpenStack, no namespaces (its browser tests skip without chromium, and
# fail instead under CI=true, as every skip does).
test-fast: venv console-assets
	$(BIN)/pytest -m "not testbed and not wan" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench

setup: system-deps venv openstack console-assets ceph-bindings

# The console's front-end libraries, from the npm registry at their locked versions, copied
# into the package: the browser never fetches anything at run time (docs/design.md, console).
CONSOLE_VENDOR := src/edgescope/console/static/vendor
console-assets: $(CONSOLE_VENDOR)/.stamp
$(CONSOLE_VENDOR)/.stamp: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; }
	cd web && npm ci --no-audit --no-fund --silent
	@mkdir -p $(CONSOLE_VENDOR)
	cp web/node_modules/cytoscape/dist/cytoscape.min.js $(CONSOLE_VENDOR)/
	cp web/node_modules/cytoscape/LICENSE $(CONSOLE_VENDOR)/cytoscape.LICENSE
	@touch $@

system-deps: $(VENV)/.system-deps
$(VENV)/.system-deps: Makefile
	@mkdir -p $(VENV)
	@if [ "$$(id -u)" = 0 ]; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi; \
	else echo "not root: skipping Debian packages ($(APT_PACKAGES)); tiers that need them will skip"; fi
	@touch $@

venv: $(VENV)/.venv-stamp
$(VENV)/.venv-stamp: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

openstack: $(VENV)/.openstack-stamp
$(VENV)/.openstack-stamp: $(VENV)/.venv-stamp requirements/openstack.txt
	$(BIN)/pip install -q -r requirements/openstack.txt
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# cinder's RBD driver imports Debian's librados/librbd bindings (not on PyPI): link just those
# two modules into the venv (a .pth folder), not all of dist-packages.
ceph-bindings: $(VENV)/.ceph-bindings-stamp
$(VENV)/.ceph-bindings-stamp: $(VENV)/.system-deps $(VENV)/.venv-stamp
	@mkdir -p $(VENV)/debian-ceph
	@for m in rados rbd; do \
	  f=$$(ls /usr/lib/python3/dist-packages/$$m.cpython-*.so 2>/dev/null | head -1); \
	  if [ -n "$$f" ]; then ln -sf "$$f" $(VENV)/debian-ceph/; else echo "no Debian $$m bindings: the testbed runs without block storage"; fi; \
	done
	@echo "$(abspath $(VENV))/debian-ceph" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/debian-ceph.pth"
	@touch $@

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache web/node_modules $(CONSOLE_VENDOR)
