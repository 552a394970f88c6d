# `make run` and `make test` work on a machine with only Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-deps
ARGS ?=

.DEFAULT_GOAL := run
CHROMIUM := /usr/bin/chromium
NGINX := /usr/sbin/nginx
PROMTOOL := /usr/bin/promtool
.PHONY: run test test-fast lint check lock setup chromium prometheus nginx

run: $(STAMP)
	$(BIN)/msashop up $(ARGS)

# Unit and integration tests in parallel, then the end-to-end suite in one process
# (it starts the platform once per session) on the default NATS bus, then the checkout tests
# again on RabbitMQ (a fresh vhost on the machine's server) and on Kafka (Tansu, started by
# msashop up): each run starts its own platform.
test: $(STAMP) chromium prometheus nginx
	$(BIN)/pytest tests/unit tests/integration tests/contract tests/security -n auto --durations=15
	$(BIN)/pytest tests/e2e --durations=15
	MSASHOP_E2E_BUS=rabbitmq $(BIN)/pytest tests/e2e/test_checkout.py
	MSASHOP_E2E_BUS=kafka $(BIN)/pytest tests/e2e/test_checkout.py

# The storefront browser test drives Debian's Chromium, never a browser Playwright downloads.
# Installed here when missing and we can (root, apt-get); otherwise that test skips (fails if CI=true).
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "$(CHROMIUM) is missing: apt-get update && apt-get install -y chromium"; \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
			|| echo "chromium could not be installed: the browser test will skip (fail with CI=true)"; \
	else \
		echo "$(CHROMIUM) is missing and installing it needs root and apt-get: the browser test will skip (fail with CI=true)"; \
	fi

# promtool checks deploy/prometheus/ and Prometheus scrapes the platform in the e2e metrics test:
# Debian's package, installed here when missing and we can (as chromium above); otherwise those
# tests skip (fail if CI=true). On a host with systemd the package also starts its own service.
prometheus:
	@if [ -x $(PROMTOOL) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "$(PROMTOOL) is missing: apt-get update && apt-get install -y prometheus"; \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; } \
			|| echo "prometheus could not be installed: its tests will skip (fail with CI=true)"; \
	else \
		echo "$(PROMTOOL) is missing and installing it needs root and apt-get: its tests will skip (fail with CI=true)"; \
	fi

# deploy/nginx/msashop.conf is checked by the real nginx (`nginx -t`, then routing in front of
# stub services): Debian's nginx-light, installed here when missing and we can (as above).
nginx:
	@if [ -x $(NGINX) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "$(NGINX) is missing: apt-get update && apt-get install -y nginx-light"; \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light; } \
			|| echo "nginx could not be installed: its tests will skip (fail with CI=true)"; \
	else \
		echo "$(NGINX) is missing and installing it needs root and apt-get: its tests will skip (fail with CI=true)"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the lock or the project metadata changed. uv is much faster than pip;
# pip is the fallback when uv cannot be installed.
$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	@if { [ -x $(BIN)/uv ] || $(BIN)/python -m pip install -q uv; } && \
		$(BIN)/uv pip install --compile-bytecode --python $(BIN)/python -r requirements.lock && \
		$(BIN)/uv pip install --python $(BIN)/python --no-deps -e . ; then :; \
	else \
		echo "uv could not install the packages; falling back to pip"; \
		$(BIN)/python -m pip install -r requirements.lock && \
		$(BIN)/python -m pip install --no-deps -e . ; \
	fi
	@touch $(STAMP)

lock: | $(BIN)/python
	@[ -x $(BIN)/uv ] || $(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.lock --python $(BIN)/python
