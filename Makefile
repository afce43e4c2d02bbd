# Everything a fresh clone needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per install, named after pyproject.toml's checksum: the demo's (charon alone)
# and the tests' (every extra; it holds the demo's too), in the same venv. The demo's
# skips byte-compiling every installed module (a third of its install time): Python
# compiles the ones the demo imports as it imports them.
SUM := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_STAMP := $(VENV)/.installed-demo-$(SUM)
TEST_STAMP := $(VENV)/.installed-test-$(SUM)
DEMO_DATE ?= 2018-10-31
DEMO_EVENTS ?= 200000
DEMO_TOP_N ?= 10
CHROMIUM := /usr/bin/chromium
# Worker processes for the suite. Each module's tests stay in one worker (--dist
# loadfile), so a module's services start once; each worker starts its own emulators.
TEST_WORKERS ?= 2

.PHONY: demo dev test lint typecheck check clean

$(DEMO_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile -e .
	@rm -f $(VENV)/.installed-demo-* && touch $@

$(TEST_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@ $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/charon sample-data --date $(DEMO_DATE) --events $(DEMO_EVENTS)
	$(BIN)/charon run --module jobs.top_artists TopArtistsJob --date $(DEMO_DATE) --top-n $(DEMO_TOP_N) --local-scheduler
	$(BIN)/charon show --module jobs.top_artists TopArtistsJob --date $(DEMO_DATE) --top-n $(DEMO_TOP_N)

# The registry service, the daemon and its page on loopback, the sample day published
# and run; Ctrl-C stops it all.
dev: $(DEMO_STAMP)
	$(BIN)/charon dev --date $(DEMO_DATE) --events $(DEMO_EVENTS)

# The UI's browser tests drive Debian's Chromium; Playwright's own browser downloads
# are never used. Installed when missing (the lists refreshed if they are too old).
$(CHROMIUM):
	apt-get install -y chromium || (apt-get update && apt-get install -y chromium)

test: $(TEST_STAMP) $(CHROMIUM)
	$(BIN)/ruff check orchestrator sensors jobs tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not alone"
	$(BIN)/pytest -m alone

lint: $(TEST_STAMP)
	$(BIN)/ruff check orchestrator sensors jobs tests bench
	$(BIN)/lint-imports

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .charon .pytest_cache .mypy_cache .ruff_cache
