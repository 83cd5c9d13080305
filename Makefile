# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://root@127.0.0.1:5432/test

# A Python >= 3.12: $(PYTHON) if given, else the first suitable one on PATH or under pyenv.
PYTHON ?= $(shell for c in python3.12 python3.13 python3 $$HOME/.pyenv/versions/3.12*/bin/python3 $$HOME/.pyenv/versions/3.13*/bin/python3 /root/.pyenv/versions/3.1[2-9]*/bin/python3; do \
	command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$c; break; }; done)

.PHONY: help venv dev run test lint test-sqlite test-postgres browser axe litellm bench clean

help:
	@echo "make run   - set up and start simulator + web + workers on SQLite"
	@echo "make test  - ruff (lint, format), mypy, the suite on SQLite, then on PostgreSQL (browser tests once)"
	@echo "make bench - run the benchmarks in bench/"

# `make run` installs what running needs; `make test` adds the test and check tools.
$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "No Python >= 3.12 found: install one (e.g. pyenv install 3.12) or run make PYTHON=/path/to/python3.12"; exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' || { echo "$(PYTHON) is older than 3.12: the dashboard needs Python >= 3.12 (Django 6)"; exit 1; }
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed
dev: $(VENV)/.installed-dev

# DEBUG stays off, as in production: var/secret-key (made once, mode 600) is the demo's
# SECRET_KEY, which every manage.py command beside it reads too; rundemo collects the static
# files that WhiteNoise serves.
run: venv
	mkdir -p var
	$(PY) -m remixsite.keyfile var/secret-key
	$(PY) manage.py migrate --noinput
	$(PY) manage.py rundemo

# The browser tests are part of the suite: without Chromium `make test` stops here, rather
# than passing with them skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "Installing Debian's chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| { echo "Could not install Debian's chromium (apt-get install chromium, as root) for the browser tests"; exit 1; }; }

# axe-core (pinned in tests/e2e/package-lock.json) for the accessibility test in tests/e2e/.
AXE := tests/e2e/node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE): tests/e2e/package.json tests/e2e/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed for axe-core, the accessibility test's checker (apt-get install npm)"; exit 1; }
	npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
	touch $@

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	SECRET_KEY=mypy-only $(VENV)/bin/mypy

# `LITELLM=1 make test` also runs tests/gateways/test_litellm.py through a real LiteLLM proxy,
# installed into a venv of its own: its many pins are not the dashboard's.
LITELLM_VENV := .venv-litellm
$(LITELLM_VENV)/.installed:
	test -x $(LITELLM_VENV)/bin/python || $(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install --quiet 'litellm[proxy]==1.108.*'
	touch $@
litellm: $(if $(filter 1,$(LITELLM)),$(LITELLM_VENV)/.installed)

# One worker per core (pytest-xdist): most tests wait on a simulator or a browser, so two
# workers on two cores halve the wall time. A module's tests stay on one worker (its browser).
PYTEST := $(VENV)/bin/pytest -n auto --dist loadscope

test-sqlite: dev axe litellm
	mkdir -p var
	$(PYTEST)

# The browser tests drive templates and scripts; the database code under them is the same the
# other tests run on PostgreSQL, so they run once (on SQLite) and the suite stays short.
test-postgres: dev litellm
	@if $(PY) -c "import psycopg; psycopg.connect('$(PG_URL)', connect_timeout=3).close()" 2>/dev/null; then \
		echo "== PostgreSQL ($(PG_URL)), all but the browser tests =="; DATABASE_URL=$(PG_URL) $(PYTEST) --ignore=tests/e2e; \
	else echo "PostgreSQL not reachable at $(PG_URL): skipping the PostgreSQL run"; fi

test: venv browser axe lint test-sqlite test-postgres

$(VENV)/.installed-bench: $(VENV)/.installed-dev
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: dev $(VENV)/.installed-bench
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(LITELLM_VENV) var
