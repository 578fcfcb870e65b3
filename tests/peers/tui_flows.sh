#!/usr/bin/env bash
# TUI-driven regression flows: the real Codex 0.169 TUI (`codex --remote URL`) under tmux against
# `.venv/bin/appserver`, over unix:// and ws://. Run by `make peers` (which installs the TUI
# outside the repository first); not part of `make test`.
#
#   tests/peers/tui_flows.sh [unix] [ws]          (default: both)
#
# Each flow types what a user types and waits for what Codex shows: /compact, /review
# (uncommitted changes), !cmd, /diff, Esc Esc rewind, "accept for session" (the second command
# runs without asking), a cancelled approval, /plan. After every flow the TUI must still be
# running and the screen must hold no error cell (a line starting with "■", which is how the
# TUI shows error replies; the cancelled approval's "Conversation interrupted" is the one that
# is expected). Then the same for `--agent openai` against a scripted local model: the plan, the
# model's command and patch behind approval, /compact. Screens are kept in $PEERS_OUT (default: a
# temp dir) for inspection.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PEERS_HOME=${PEERS_HOME:-/tmp/appserver-peers}
CX=${CODEX_BIN:-$PEERS_HOME/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex}
APPSERVER=${APPSERVER:-$ROOT/.venv/bin/appserver}
OUT=${PEERS_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/tui-flows.XXXX")}
TRANSPORTS=${*:-unix ws}
mkdir -p "$OUT"
[ -x "$CX" ] || { echo "no Codex TUI at $CX (run make peers)" >&2; exit 2; }
command -v tmux >/dev/null || { echo "tmux is missing (run make peers)" >&2; exit 2; }

FAILURES=0
SESSION=""
fail() { echo "FAIL [$TRANSPORT] $*"; FAILURES=$((FAILURES + 1)); }
screen() { tmux capture-pane -t "$SESSION" -p 2>/dev/null; }
save() { screen > "$OUT/$TRANSPORT.$1.txt"; }
alive() { [ ! -s "$OUT/$TRANSPORT.exit.txt" ] && tmux has-session -t "$SESSION" 2>/dev/null; }
wait_for() {  # wait_for TEXT [SECONDS]
  local i
  for i in $(seq 1 $((${2:-20} * 4))); do
    alive || { fail "the TUI exited while waiting for: $1"; return 1; }
    screen | grep -qF -- "$1" && return 0
    sleep 0.25
  done
  fail "timed out waiting for: $1"; return 1
}
wait_count() {  # wait_count TEXT N: until TEXT shows on N lines of the screen
  local i
  for i in $(seq 1 80); do
    alive || { fail "the TUI exited while waiting for: $1"; return 1; }
    [ "$(screen | grep -cF -- "$1")" -ge "$2" ] && return 0
    sleep 0.25
  done
  fail "timed out waiting for $2 x: $1"; return 1
}
type_line() { tmux send-keys -t "$SESSION" -l "$1"; sleep 0.3; tmux send-keys -t "$SESSION" Enter; }
check() {  # after a flow: still running, no error cell besides the expected interruption
  local name=$1
  save "$name"
  alive || { fail "$name: the TUI exited"; return; }
  if screen | grep -v "Conversation interrupted" | grep -q "^■"; then
    fail "$name: error cell on screen"; screen | grep "^■" | sed 's/^/    /'
  else
    echo "ok   [$TRANSPORT] $name"
  fi
}

start_server() {  # sets SERVER_PID and URL
  local home=$1 log=$2
  : > "$log"  # exists before the server's shell opens it, for the ws port search below
  case $TRANSPORT in
    unix) URL="unix://$home/s.sock"
          (cd "$REPO" && exec "$APPSERVER" --listen "$URL" --home "$home/h" $SERVER_EXTRA) 2>"$log" &
          SERVER_PID=$!
          for _ in $(seq 1 100); do [ -S "$home/s.sock" ] && break; sleep 0.1; done ;;
    ws)   (cd "$REPO" && exec "$APPSERVER" --listen ws://127.0.0.1:0 --home "$home/h" $SERVER_EXTRA) \
            2>"$log" &
          SERVER_PID=$!
          URL=""
          for _ in $(seq 1 100); do
            URL=$(grep -o 'ws://127\.0\.0\.1:[0-9]*' "$log" | head -1) && [ -n "$URL" ] && break
            sleep 0.1
          done ;;
  esac
  [ -n "$URL" ] || { fail "the server did not start: $(tail -3 "$log")"; return 1; }
}

run_flows() {
  local tmp; tmp=$(mktemp -d "${TMPDIR:-/tmp}/tui-$TRANSPORT.XXXX")
  REPO=$tmp/repo; mkdir -p "$REPO"
  git -C "$REPO" init -q && git -C "$REPO" config user.email peers@example.com \
    && git -C "$REPO" config user.name peers
  echo one > "$REPO/a.txt"; git -C "$REPO" add a.txt; git -C "$REPO" commit -qm first
  echo two >> "$REPO/a.txt"
  start_server "$tmp" "$OUT/$TRANSPORT.server.log" || return
  SESSION=tuiflows$$$TRANSPORT
  mkdir -p "$tmp/codex-home"
  tmux new-session -d -s "$SESSION" -x 160 -y 50 \
    "cd $REPO && CODEX_HOME=$tmp/codex-home timeout --foreground 300 $CX --remote $URL 2>$OUT/$TRANSPORT.tui.stderr; echo TUI_EXIT=\$? > $OUT/$TRANSPORT.exit.txt"
  wait_for "Ask Codex to do anything" 40 && sleep 1 && tmux send-keys -t "$SESSION" Escape \
    && sleep 0.5
  type_line "hello world" && wait_for "You said: hello world" && check hello

  type_line "/compact" && wait_for "Context compacted" && check compact

  type_line "/review" && wait_for "Review uncommitted changes" \
    && tmux send-keys -t "$SESSION" 2 && sleep 0.3 && tmux send-keys -t "$SESSION" Enter \
    && wait_for "Code review finished" && wait_for "a.txt (+1 -0)" && check review

  type_line "!echo peer-shell-output" && wait_for "You ran echo peer-shell-output" \
    && wait_for "└ peer-shell-output" && check shell_command

  type_line "/diff" && wait_for "+two" && save diff_pager && tmux send-keys -t "$SESSION" q \
    && sleep 0.5 && check diff

  type_line "rewind this turn" && wait_for "You said: rewind this turn" \
    && tmux send-keys -t "$SESSION" Escape && sleep 0.4 && tmux send-keys -t "$SESSION" Escape \
    && wait_for "rewind" && tmux send-keys -t "$SESSION" Enter \
    && wait_for "Conversation reverted to this point" && tmux send-keys -t "$SESSION" C-u \
    && check rewind

  # "Yes, and don't ask again for this command in this session": the same command then runs
  # without a prompt.
  type_line "\$ echo approved-again" && wait_for "don't ask again for this command in this session" \
    && tmux send-keys -t "$SESSION" a && wait_count "└ approved-again" 1 \
    && type_line "\$ echo approved-again" && wait_count "└ approved-again" 2 \
    && { screen | grep -q "Would you like to run the following command" \
         && fail "accept for session: asked again" || true; } && check accept_for_session

  type_line "\$ echo never-run" && wait_for "Would you like to run the following command" \
    && tmux send-keys -t "$SESSION" Escape && wait_for "Conversation interrupted" \
    && check cancel_approval

  type_line "/plan" && wait_for "Plan mode" && type_line "plan something" \
    && wait_for "You said: plan something" && check plan

  type_line "/quit"
  for _ in $(seq 1 40); do [ -s "$OUT/$TRANSPORT.exit.txt" ] && break; sleep 0.25; done
  grep -q "TUI_EXIT=0" "$OUT/$TRANSPORT.exit.txt" 2>/dev/null \
    || fail "the TUI did not exit 0 on /quit: $(cat "$OUT/$TRANSPORT.exit.txt" 2>/dev/null)"
  tmux kill-session -t "$SESSION" 2>/dev/null
  kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null
  rm -rf "$tmp"
}

# `--agent openai` against a scripted local model (tests/peers/scripted_model.py): a streamed
# plan, the model's command asked about and run, its patch shown as a diff and applied after
# approval, the final answer, then /compact through the model.
run_model_flow() {
  local tmp port_file model_pid; tmp=$(mktemp -d "${TMPDIR:-/tmp}/tui-model-$TRANSPORT.XXXX")
  REPO=$tmp/repo; mkdir -p "$REPO"
  port_file=$tmp/model.port
  (cd "$ROOT" && exec "$ROOT/.venv/bin/python" -m tests.peers.scripted_model "$port_file") \
    2>"$OUT/$TRANSPORT.model.log" &
  model_pid=$!
  for _ in $(seq 1 100); do [ -s "$port_file" ] && break; sleep 0.1; done
  export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$port_file")/v1" OPENAI_API_KEY=scripted
  SERVER_EXTRA="--agent openai" start_server "$tmp" "$OUT/$TRANSPORT.model-server.log" \
    || { kill "$model_pid"; return; }
  SESSION=tuimodel$$$TRANSPORT
  mkdir -p "$tmp/codex-home"
  tmux new-session -d -s "$SESSION" -x 160 -y 50 \
    "cd $REPO && CODEX_HOME=$tmp/codex-home timeout --foreground 300 $CX --remote $URL 2>$OUT/$TRANSPORT.model-tui.stderr; echo TUI_EXIT=\$? > $OUT/$TRANSPORT.exit.txt"
  wait_for "Ask Codex to do anything" 40 && sleep 1 && tmux send-keys -t "$SESSION" Escape \
    && sleep 0.5
  type_line "write a greeting" && wait_for "Updated Plan" && wait_for "Check the workspace" \
    && wait_for "Would you like to run the following command" && tmux send-keys -t "$SESSION" y \
    && wait_for "└ workspace-checked" && wait_for "+hello from the model" \
    && wait_for "Would you like to make the following edits" && tmux send-keys -t "$SESSION" y \
    && wait_for "All done: greeting.txt is written." \
    && { grep -qx "hello from the model" "$REPO/greeting.txt" \
         || fail "model: the approved patch was not applied"; } && check model_turn
  type_line "/compact" && wait_for "Context compacted" && check model_compact
  type_line "/quit"
  for _ in $(seq 1 40); do [ -s "$OUT/$TRANSPORT.exit.txt" ] && break; sleep 0.25; done
  grep -q "TUI_EXIT=0" "$OUT/$TRANSPORT.exit.txt" 2>/dev/null \
    || fail "model: the TUI did not exit 0 on /quit: $(cat "$OUT/$TRANSPORT.exit.txt" 2>/dev/null)"
  tmux kill-session -t "$SESSION" 2>/dev/null
  kill "$SERVER_PID" "$model_pid" 2>/dev/null; wait "$SERVER_PID" "$model_pid" 2>/dev/null
  unset OPENAI_BASE_URL OPENAI_API_KEY
  rm -rf "$tmp"
}

SERVER_EXTRA=""
for TRANSPORT in $TRANSPORTS; do run_flows; rm -f "$OUT/$TRANSPORT.exit.txt"; run_model_flow; done
echo "screens and logs: $OUT"
[ "$FAILURES" = 0 ] && echo "all TUI flows passed" || echo "$FAILURES failure(s)"
exit $((FAILURES > 0))
