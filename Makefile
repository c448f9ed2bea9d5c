# Two commands on a fresh machine (Python >= 3.11 and make): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test test-pythons check lint typecheck arch servers bench clean diagram soak soak-cluster fuzz screenshot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(DEVSTAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(STAMP)

demo: $(STAMP)
	$(BIN)/vending demo
	@echo "vending is installed in $(VENV)/bin: run \`source $(VENV)/bin/activate\` to have it on your PATH (README: A day in the life)"

# Servers, the browser (with CJK fonts: the dashboard names products in 中文) and the NFC host tools the tests use
# (Mosquitto with the headers and compiler its retain-guard plugin is built with, PostgreSQL, RabbitMQ,
# Chromium, libnfc) come from Debian's packages; installed only when root
# and missing. Otherwise the tests that need them skip, naming the package -- and fail under CI=true.
servers:
	@missing=""; \
	if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then missing="mosquitto mosquitto-clients"; fi; \
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then missing="$$missing postgresql"; fi; \
	if ! command -v chromium >/dev/null 2>&1; then missing="$$missing chromium"; fi; \
	if ! command -v nfc-list >/dev/null 2>&1; then missing="$$missing libnfc-bin"; fi; \
	if ! command -v nfc-poll >/dev/null 2>&1; then missing="$$missing libnfc-examples"; fi; \
	if ! fc-list :lang=zh-tw 2>/dev/null | grep -q .; then missing="$$missing fonts-noto-cjk"; fi; \
	if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then missing="$$missing rabbitmq-server"; fi; \
	if ! command -v cc >/dev/null 2>&1 || [ ! -f /usr/include/mosquitto_broker.h ] || [ ! -f /usr/include/mosquitto.h ]; then \
	  missing="$$missing gcc libc6-dev mosquitto-dev libmosquitto-dev"; fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing from Debian's packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing: apt-get install $$missing; tests needing them will skip"; \
	  fi; \
	fi

# `make test` is the one command: lint, types and architecture first, then the whole suite in parallel
# (4 workers on 2 cores: many tests wait on brokers and child processes rather than compute). The RabbitMQ
# tests are one xdist group: one worker runs them on one cluster, started once (it takes ~20 s to form).
test: check servers
	$(BIN)/python -m pytest -q -n 4 --dist loadgroup

check: lint typecheck arch

# The whole suite on every supported Python found here (pyenv's, or on PATH), one venv each.
SUPPORTED_PYTHONS := 3.11 3.12 3.13
test-pythons:
	@tested=""; for v in $(SUPPORTED_PYTHONS); do \
	  py=$$(ls $$HOME/.pyenv/versions/$$v*/bin/python$$v 2>/dev/null | tail -1); \
	  [ -n "$$py" ] || py=$$(command -v python$$v 2>/dev/null); \
	  if [ -z "$$py" ]; then echo "== python$$v: not found, skipped"; continue; fi; \
	  echo "== python$$v ($$py)"; \
	  $(MAKE) --no-print-directory test PYTHON=$$py VENV=.venv-$$v || exit 1; \
	  tested="$$tested $$v"; \
	done; echo "test-pythons: passed on$$tested"

lint: $(DEVSTAMP)
	$(BIN)/ruff check firmware simulator tests bench
	$(BIN)/ruff format --check firmware simulator tests bench

# strict on firmware/, the defaults elsewhere (pyproject.toml [tool.mypy])
typecheck: $(DEVSTAMP)
	$(BIN)/mypy

# import-linter contracts (pyproject.toml [tool.importlinter]): the layers docs/architecture.md draws
arch: $(DEVSTAMP)
	$(BIN)/lint-imports

bench: $(DEVSTAMP) servers
	$(BIN)/python -m bench

# The full-size outage soak: 10,000 transactions on 4 machines while Mosquitto and the backend die.
soak: $(DEVSTAMP) servers
	$(BIN)/python bench/soak.py --transactions 10000 --machines 4
	$(BIN)/python -m simulator.docgen

# Issue 33's soak: 20 broker-node kills in a row under a fleet's traffic on the RabbitMQ cluster; nothing
# lost or stored twice (bench/cluster.py --soak; the figures go to bench/results.json under "cluster").
soak-cluster: $(DEVSTAMP) servers
	$(BIN)/python bench/cluster.py --soak 20

# Coverage-guided fuzzing (atheris/libFuzzer), 1,000,000 inputs per target; the corpus grows in tests/fuzz/corpus/.
FUZZ_TARGETS := framers machine catalog scenario command wire
fuzz: $(DEVSTAMP)
	$(BIN)/pip install -q -e '.[fuzz]'
	@for target in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$target"; \
	  $(BIN)/python tests/fuzz/fuzz_main.py $$target -runs=1000000 tests/fuzz/corpus/$$target || exit 1; \
	done

# The dashboard picture in docs/ comes from the browser test itself, never from a hand-made capture.
screenshot: $(DEVSTAMP) servers
	VENDING_DASHBOARD_SCREENSHOT=docs/dashboard.png $(BIN)/python -m pytest -q \
	  "tests/simulator/dashboard/test_dashboard_browser.py::test_the_page_follows_sales_stock_and_alerts_live_and_restocks_the_machine[embedded]"

diagram: $(STAMP)
	$(BIN)/vending diagram

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
