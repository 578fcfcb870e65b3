# Every target bootstraps .venv on a fresh machine (only Python and pip needed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test run lint typecheck unit clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m compileall -q appserver
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check appserver tests examples $(wildcard benchmarks)
	$(BIN)/ruff format --check appserver tests examples $(wildcard benchmarks)
	$(BIN)/mypy --strict appserver
	$(BIN)/pytest -q

run: $(STAMP)
	$(BIN)/appserver --listen unix://

# All scenarios, appserver and codex interleaved when the codex binary exists (< 10 min);
# e.g. `make bench BENCH_ARGS=--quick` (< 2 min). Results: benchmarks/results/.
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
