# sipwire developer tasks. `make test` is what CI runs (.ci/run).

# Debian's /usr/bin/python3.11 (built with PGO/LTO) is preferred: it runs sipwire ~30 % faster.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11) $(shell command -v python3.11 2>/dev/null || command -v python3))
VENV   := .venv
BIN    := $(VENV)/bin
# Stamp files: the venv is (re)built only when pyproject.toml changes.
DEV_STAMP   := $(VENV)/.stamp-dev
# The bench peers live in a venv of their own: sippy installs a top-level
# "tests" package that would shadow this repository's tests/.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.stamp-bench
PIP_FLAGS   ?= --quiet --disable-pip-version-check

.PHONY: all venv sysdeps lint test bench fuzz run clean

all: test

venv: $(DEV_STAMP)

$(DEV_STAMP): pyproject.toml
	@# A bare Debian python3 lacks ensurepip until python3-venv is installed.
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv $(VENV) || { \
	    rm -rf $(VENV) && bash scripts/install-system-deps.sh python3-venv && \
	    $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev]'
	@touch $@

$(BENCH_STAMP): pyproject.toml
	@$(BENCH_VENV)/bin/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install $(PIP_FLAGS) -e '.[bench,codecs]'
	@touch $@

sysdeps:
	bash scripts/install-system-deps.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict
	$(BIN)/lint-imports

test: venv sysdeps
	$(MAKE) lint
	$(BIN)/pytest

bench: $(BENCH_STAMP) sysdeps
	$(BENCH_VENV)/bin/python bench/run.py
	$(BENCH_VENV)/bin/python bench/calls.py
	$(BENCH_VENV)/bin/python bench/registrar.py
	$(BENCH_VENV)/bin/python bench/proxy.py
	$(BENCH_VENV)/bin/python bench/media_echo.py

# A long fuzz run of `sipwire answer` (about 7 minutes): 10^6 mutated datagrams and 10^4
# TCP framings in a private network namespace. FUZZ_SEED=N repeats a run; failing inputs
# are kept under /tmp/sipwire-fuzz-SEED-TIME/. `make test` runs a tenth of it.
fuzz: venv
	$(BIN)/python -m tests.load.fuzz --datagrams 1000000 --tcp 10000 $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

# The registrar server on loopback: udp/tcp 5060, tls 5061, ws 8088, http 9090, data in ./data.
run: venv
	$(BIN)/sipwire serve -v

clean:
	rm -rf $(VENV) $(BENCH_VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
