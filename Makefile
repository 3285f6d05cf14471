# overair: `make run` installs what the server needs and starts it on the embedded default; `make test`
# adds what the tests need and runs them all. Both work on a fresh Debian machine with Python 3.11.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# What `make run` needs (the server, CLI and engine) and, apart, what the checks and tests add.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
APT := $(shell [ "$$(id -u)" = 0 ] && echo apt-get || echo sudo apt-get)

.PHONY: run demo docs test test-fast lint typecheck architecture pytest system-deps npm-deps console-assets bench bench-delta bench-expo-patch clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { $(APT) update && $(APT) install -y python3 python3-venv; }
	$(PYTHON) -m venv $(VENV) || { $(APT) update && $(APT) install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(RUN_STAMP) console-assets
	$(BIN)/overair serve $(ARGS)

# The seeds' story, scripted: a typo, a pushed fix, the prompt, a broken update rolled back by itself.
demo: $(RUN_STAMP)
	$(BIN)/python examples/welcome-app/demo.py

# docs/cli-reference.md, generated from the commands (tests fail when it is out of date).
docs: $(RUN_STAMP)
	$(BIN)/python scripts/gen_cli_reference.py

# System packages the tests use: Node.js and npm (real CodePush/semver packages, the console's chart
# library), Debian's Chromium (the console's browser tests; Playwright never downloads a browser), jq
# (docs/ci.md's pipelines parse the CLI's JSON with it) and Debian's PostgreSQL server (the tests start
# their own, in a temporary folder).
system-deps:
	@command -v node >/dev/null && command -v npm >/dev/null || { $(APT) update && $(APT) install -y nodejs npm; }
	@[ -x /usr/bin/chromium ] || { $(APT) update && $(APT) install -y chromium; }
	@command -v jq >/dev/null || { $(APT) update && $(APT) install -y jq; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(APT) update && $(APT) install -y postgresql; }
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { $(APT) update && $(APT) install -y nginx; }
	@command -v openssl >/dev/null || { $(APT) update && $(APT) install -y openssl; }
	@command -v bspatch >/dev/null || { $(APT) update && $(APT) install -y bsdiff; }
	@command -v swift-proxy-server >/dev/null && command -v swift-object-server >/dev/null && command -v memcached >/dev/null || { $(APT) update && $(APT) install -y swift swift-proxy swift-account swift-container swift-object memcached; }

# The console's chart library, installed from npm at build time and served by overair itself (offline).
CONSOLE_VENDOR := src/overair/console/static/vendor
$(CONSOLE_VENDOR)/chart.umd.min.js: console/package.json console/package-lock.json
	@command -v npm >/dev/null || { $(APT) update && $(APT) install -y nodejs npm; }
	cd console && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(CONSOLE_VENDOR)
	cp console/node_modules/chart.js/dist/chart.umd.min.js $@

console-assets: $(CONSOLE_VENDOR)/chart.umd.min.js

npm-deps: system-deps
	cd tests/compat && npm ci --no-audit --no-fund --loglevel=error
	cd tests/fixtures/rn-bundle-app && npm ci --no-audit --no-fund --loglevel=error
	cd tests/fixtures/expo-app && npm ci --no-audit --no-fund --loglevel=error

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/ruff format --check src tests benchmarks examples scripts

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

architecture: $(TEST_STAMP)
	$(BIN)/lint-imports

# Every test on SQLite and, side by side, every test that touches a database on a PostgreSQL server the
# run starts (scripts/test_both_databases.sh says why).
pytest: $(TEST_STAMP) npm-deps console-assets
	scripts/test_both_databases.sh $(BIN)

test: lint typecheck architecture pytest

# For quick loops: lint, types, contracts and the tests not marked slow (no live servers, npm or browser).
test-fast: lint typecheck architecture
	$(BIN)/pytest -q -m "not slow"

# Benchmarks need wrk (Debian package); not part of `make test`.
bench: $(RUN_STAMP)
	@command -v wrk >/dev/null || { $(APT) update && $(APT) install -y wrk; }
	$(BIN)/python benchmarks/update_check.py

# Delta sizes on real react-dom builds and on a react-native app's Hermes bytecode (npm installs them into
# benchmarks/.cache; the first run also bundles the app with Metro, a few minutes); not part of `make test`.
bench-delta: $(RUN_STAMP) system-deps
	$(BIN)/python benchmarks/delta.py

# Expo launch-asset bsdiff patch vs full gzip download on a real Metro bundle; not part of `make test`.
bench-expo-patch: $(RUN_STAMP) npm-deps
	$(BIN)/python benchmarks/expo_patch.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/compat/node_modules console/node_modules $(CONSOLE_VENDOR)
