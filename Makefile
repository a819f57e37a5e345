# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_SCALE ?= 0.1
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install run test test-sqlite test-postgres test-browser benchmark benchmark-queues clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13), "Python 3.11 ou 3.12 requis (durable-rules)"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/backoffice bootstrap --scale $(DEMO_SCALE)
	$(BIN)/backoffice serve --host $(HOST) --port $(PORT)

test: install test-sqlite test-postgres

test-sqlite: install
	@echo "== Tests sur SQLite =="
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest

test-postgres: install
	@if [ -n "$(TEST_DATABASE_URL)" ]; then \
		echo "== Tests sur PostgreSQL ($(TEST_DATABASE_URL)) =="; \
		TEST_DATABASE_URL="$(TEST_DATABASE_URL)" $(BIN)/python -m pytest; \
	else \
		echo "== TEST_DATABASE_URL non défini : tests PostgreSQL non lancés =="; \
	fi

# The browser suite (tests/browser): the real application served over demo data, driven in
# Debian's Chromium (/usr/bin/chromium) by Playwright, axe-core on every page, at 390 px too;
# it rewrites the screenshots of docs/screens/. Needs the Debian packages chromium and
# graphviz (.ci/run installs them when missing).
test-browser: install
	@echo "== Tests dans le navigateur (Chromium) =="
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest -m browser tests/browser

# The project's benchmark (README, "Performance"): BENCH_DATABASE=URL, BENCH_SCALE=25.
BENCH_SCALE ?= 25
benchmark: install
	$(BIN)/backoffice bench --scale $(BENCH_SCALE) $(if $(BENCH_DATABASE),--database $(BENCH_DATABASE))

# Delivery rate of the e-mail and hub queues (DATABASE_URL, else a temporary SQLite file).
benchmark-queues: install
	$(BIN)/python benchmarks/queues.py

clean:
	rm -rf $(VENV) instance .pytest_cache
