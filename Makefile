# Every target bootstraps .venv on a fresh machine (only Python and pip needed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: sandbox test run lint typecheck unit clean bench peers

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m compileall -q appserver
	touch $(STAMP)

# Commands run confined by bubblewrap (README "Sandbox"): install Debian's bubblewrap when bwrap
# is missing and we are root with apt-get; otherwise say why confined commands will be refused.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } \
	  || echo "warning: bubblewrap (bwrap) is not installed and cannot be installed here: read-only and" \
	     "workspace-write commands will be refused and the sandbox tests fail (install bubblewrap)" >&2

test: $(STAMP) sandbox
	$(BIN)/ruff check appserver tests examples $(wildcard benchmarks)
	$(BIN)/ruff format --check appserver tests examples $(wildcard benchmarks)
	$(BIN)/mypy --strict appserver
	$(BIN)/pytest -q

run: $(STAMP) sandbox
	@echo "appserver is $(abspath $(BIN))/appserver (the venv's bin is not on PATH)"
	$(BIN)/appserver --listen unix://

# All scenarios, appserver and codex interleaved when the codex binary exists (~20 min);
# e.g. `make bench BENCH_ARGS=--quick` (~4 min). Results: benchmarks/results/.
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# The real Codex 0.169 TUI driven under tmux through /compact, /review, !cmd, /diff, rewind,
# approvals and /plan over unix:// and ws:// (tests/peers/tui_flows.sh). The TUI is installed
# outside the repository, in $(PEERS_HOME), as ../shared/peers/setup.sh does; not part of `test`.
PEERS_HOME ?= /tmp/appserver-peers
CODEX_TUI := $(PEERS_HOME)/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex
peers: $(STAMP) sandbox
	@mkdir -p $(PEERS_HOME)
	test -x $(CODEX_TUI) || npm install --prefix $(PEERS_HOME) --no-audit --no-fund @openai/codex@0.169.0 >/dev/null
	@command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq tmux >/dev/null; }
	PEERS_HOME=$(PEERS_HOME) tests/peers/tui_flows.sh $(PEERS_TRANSPORTS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
