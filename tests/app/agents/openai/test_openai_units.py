"""The openai agent's pure parts: SSE decoding, the wire parsers, Codex's safe-command rules,
settings resolution, AGENTS.md discovery, history conversion and the shell tool's policy."""

from __future__ import annotations

import base64
import itertools
import tempfile
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appserver.app.agents.base import CommandOutcome
from appserver.app.agents.openai.conversation import history_messages, user_content
from appserver.app.agents.openai.instructions import (
    DOC_NAMES,
    build_instructions,
    docs_signature,
    project_docs,
)
from appserver.app.agents.openai.safety import display_command, is_known_safe_command
from appserver.app.agents.openai.settings import NO_KEY, resolve
from appserver.app.agents.openai.sse import SseDecoder
from appserver.app.agents.openai.tools import shell
from appserver.app.agents.openai.wire import (
    ChatParser,
    ResponsesParser,
    StreamError,
    responses_input,
    responses_request,
)
from tests.fake_openai import chunk, reasoning_chunks, tool_call_chunks, usage_chunk

# -- SSE ----------------------------------------------------------------------------------------

payload_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40
)


@given(
    payloads=st.lists(payload_text, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=10),
    crlf=st.booleans(),
    comments=st.booleans(),
)
def test_sse_payloads_survive_any_split(
    payloads: list[str], cuts: list[int], crlf: bool, comments: bool
) -> None:
    newline = "\r\n" if crlf else "\n"
    events = []
    for payload in payloads:
        prefix = f": keep-alive{newline}event: message{newline}" if comments else ""
        events.append(f"{prefix}data: {payload}{newline}{newline}")
    data = "".join(events).encode()
    decoder = SseDecoder()
    out: list[bytes] = []
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        out += decoder.feed(data[start:cut])
        start = cut
    out += decoder.feed(data[start:])
    assert out == [p.encode() for p in payloads]


def test_sse_joins_multiline_data() -> None:
    assert SseDecoder().feed(b"data: a\ndata: b\nid: 3\n\ndata:c\n\n") == [b"a\nb", b"c"]


# -- the wire parsers ---------------------------------------------------------------------------


@given(arguments=st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=4))
def test_chat_tool_call_arguments_are_reassembled(arguments: dict[str, str]) -> None:
    parser = ChatParser()
    for event in tool_call_chunks("shell", arguments, "c9"):
        assert parser.feed(event) == (None, None)
    (call,) = parser.tool_calls
    assert (call.call_id, call.name) == ("c9", "shell")
    assert orjson.loads(call.arguments) == arguments


def test_chat_parser_text_reasoning_usage_and_errors() -> None:
    parser = ChatParser()
    assert parser.feed(chunk({"content": "hi"})) == ("hi", None)
    assert parser.feed(reasoning_chunks("hmm")[0]) == (None, "hmm")
    assert parser.feed(chunk({"reasoning": "r"})) == (None, "r")
    parser.feed(chunk({}, finish_reason="stop"))
    parser.feed(usage_chunk(7, 3))
    assert parser.finish_reason == "stop"
    assert parser.usage is not None
    assert (parser.usage.input_tokens, parser.usage.output_tokens) == (7, 3)
    with pytest.raises(StreamError, match="overloaded"):
        parser.feed({"error": {"message": "overloaded"}})


def test_two_parallel_tool_calls_keep_their_order() -> None:
    parser = ChatParser()
    for event in tool_call_chunks("b", {}, "second", index=1) + tool_call_chunks(
        "a", {}, "first", index=0
    ):
        parser.feed(event)
    assert [c.call_id for c in parser.tool_calls] == ["first", "second"]


def test_responses_parser() -> None:
    parser = ResponsesParser()
    assert parser.feed({"type": "response.output_text.delta", "delta": "x"}) == ("x", None)
    summary = {"type": "response.reasoning_summary_text.delta", "delta": "s"}
    assert parser.feed(summary) == (None, "s")
    call = {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{}"}
    parser.feed({"type": "response.output_item.done", "item": call})
    usage = {"input_tokens": 5, "output_tokens": 2}
    parser.feed({"type": "response.completed", "response": {"usage": usage}})
    assert [c.call_id for c in parser.tool_calls] == ["c1"]
    assert parser.usage is not None
    assert parser.usage.input_tokens == 5
    with pytest.raises(StreamError, match="boom"):
        parser.feed({"type": "response.failed", "response": {"error": {"message": "boom"}}})


def test_responses_request_converts_the_conversation() -> None:
    conversation = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "shell", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "out"},
    ]
    assert responses_input(conversation) == [
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "out"},
    ]
    tool = {"name": "shell", "parameters": {}}
    body = responses_request("m", "be nice", conversation, [tool], None)
    assert body["instructions"] == "be nice"
    assert body["tools"] == [{"type": "function", "name": "shell", "parameters": {}}]
    assert body["stream"] is True


# -- Codex's safe commands ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["ls"],
        ["cat", "a.txt"],
        ["sed", "-n", "1,5p", "file.txt"],
        ["nl", "-nrz", "Cargo.toml"],
        ["find", ".", "-name", "file.txt"],
        ["rg", "Cargo.toml", "-n"],
        ["base64"],
        ["bash", "-lc", "ls"],
        ["bash", "-lc", 'grep -R "Cargo.toml" -n || true'],
        ["bash", "-lc", "ls && pwd"],
        ["bash", "-lc", "echo 'hi' ; ls"],
        ["bash", "-lc", "ls | wc -l"],
        ["bash", "-lc", "sed -n '1,5p' file.txt"],
        ["zsh", "-lc", "ls"],
    ],
)
def test_known_safe(argv: list[str]) -> None:
    assert is_known_safe_command(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["git", "status"],
        ["cargo", "check"],
        ["foo"],
        ["sed", "-n", "xp", "file.txt"],
        ["find", ".", "-name", "file.txt", "-exec", "rm", "{}", ";"],
        ["find", ".", "-delete", "-name", "file.txt"],
        ["find", ".", "-fprint", "/etc/passwd"],
        ["rg", "--pre", "pwned", "files"],
        ["rg", "--pre=pwned", "files"],
        ["rg", "-z", "files"],
        ["base64", "-o", "out.bin"],
        ["base64", "--output=out.bin"],
        ["bash", "-lc", "git status"],
        ["bash", "-lc", "git", "status"],
        ["bash", "-lc", "'git status'"],
        ["bash", "-lc", "find . -name file.txt -delete"],
        ["bash", "-lc", "ls && rm -rf /"],
        ["bash", "-lc", "(ls)"],
        ["bash", "-lc", "ls || (pwd && echo hi)"],
        ["bash", "-lc", "ls > out.txt"],
        ["bash", "-lc", "echo $(rm x)"],
        ["bash", "-lc", "ls & rm x"],
        [],
    ],
)
def test_not_known_safe(argv: list[str]) -> None:
    assert not is_known_safe_command(argv)


def test_display_command() -> None:
    assert display_command(["bash", "-lc", "ls -la | head"]) == "ls -la | head"
    assert display_command(["echo", "a b"]) == "echo 'a b'"


# -- settings -----------------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1/", "OPENAI_API_KEY": "sk-x"}
    settings = resolve({}, env)
    assert (settings.base_url, settings.api_key, settings.wire_api) == (
        "http://127.0.0.1:8000/v1",
        "sk-x",
        "chat",
    )
    assert settings.model is None


def test_settings_from_config_toml_override_the_environment() -> None:
    config = {
        "model": "llama3.1",
        "model_provider": "local",
        "model_providers": {
            "local": {
                "base_url": "http://127.0.0.1:11434/v1",
                "env_key": "LOCAL_KEY",
                "wire_api": "responses",
            }
        },
    }
    env = {"OPENAI_BASE_URL": "http://ignored/v1", "LOCAL_KEY": "k"}
    settings = resolve(config, env)
    assert settings.base_url == "http://127.0.0.1:11434/v1"
    assert (settings.api_key, settings.env_key, settings.wire_api) == (
        "k",
        "LOCAL_KEY",
        "responses",
    )
    assert settings.model == "llama3.1"


def test_built_in_ollama_provider_and_agent_names_are_no_models() -> None:
    settings = resolve({"model_provider": "ollama", "model": "openai"}, {}, frozenset({"openai"}))
    assert settings.base_url == "http://localhost:11434/v1"
    assert settings.api_key == NO_KEY
    assert settings.model is None


# -- instructions -------------------------------------------------------------------------------


def test_agents_md_from_the_repo_root_down_to_the_cwd(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("outside the repo")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "AGENTS.md").write_text("root rules")
    pkg = repo / "pkg"
    pkg.mkdir()
    (pkg / "AGENTS.md").write_text("package rules")
    (pkg / "AGENTS.override.md").write_text("override rules")
    assert [text for _, text in project_docs(pkg)] == ["root rules", "override rules"]
    instructions = build_instructions(str(pkg), "untrusted")
    assert "outside the repo" not in instructions
    assert "<approval_policy>untrusted</approval_policy>" in instructions


def test_without_a_repo_only_the_cwd_counts(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("parent")
    child = tmp_path / "child"
    child.mkdir()
    (child / "AGENTS.md").write_text("child")
    assert [text for _, text in project_docs(child)] == ["child"]


doc_operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 2), st.sampled_from(DOC_NAMES)),
        st.tuples(st.just("delete"), st.integers(0, 2), st.sampled_from(DOC_NAMES)),
        st.tuples(st.just("git"), st.integers(0, 2), st.just("")),
    ),
    max_size=10,
)


@settings(max_examples=60, deadline=None)
@given(operations=doc_operations)
def test_an_unchanged_docs_signature_means_unchanged_docs(
    operations: list[tuple[str, int, str]],
) -> None:
    """Files written, deleted, `.git` made or removed at any level: whenever the signature stays
    the same, what discovery reads stays the same (edits here change a file's size: an edit
    keeping it within one tick of the file system's clock is what the signature cannot see)."""
    lengths = itertools.count(1)
    with tempfile.TemporaryDirectory() as top:
        levels = [
            Path(top) / "outer",
            Path(top) / "outer" / "repo",
            Path(top) / "outer" / "repo" / "pkg",
        ]
        levels[-1].mkdir(parents=True)
        cwd = levels[-1]
        signature, docs = docs_signature(cwd), project_docs(cwd)
        for kind, level, name in operations:
            directory = levels[level]
            if kind == "write":
                (directory / name).write_text(f"{name} " + "x" * next(lengths))
            elif kind == "delete":
                (directory / name).unlink(missing_ok=True)
            elif (directory / ".git").exists():
                (directory / ".git").rmdir()
            else:
                (directory / ".git").mkdir()
            now_signature, now_docs = docs_signature(cwd), project_docs(cwd)
            if now_signature == signature:
                assert now_docs == docs
            signature, docs = now_signature, now_docs


# -- history ------------------------------------------------------------------------------------


def test_history_with_a_summary_declined_command_and_patch() -> None:
    turn = {
        "items": [
            {"type": "userMessage", "content": [{"type": "text", "text": "q"}]},
            {"type": "reasoning", "id": "r"},
            {"type": "agentMessage", "text": "let me look"},
            {"type": "commandExecution", "id": "c", "command": "rm x", "status": "declined"},
            {
                "type": "fileChange",
                "id": "f",
                "status": "completed",
                "changes": [{"path": "/w/a", "kind": {"type": "add"}, "diff": "x"}],
            },
            {"type": "agentMessage", "text": "done"},
        ]
    }
    messages = history_messages([turn], "we talked")
    assert [m["role"] for m in messages] == [
        "user",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert "we talked" in messages[0]["content"]
    assert messages[2]["content"] == "let me look"
    assert messages[2]["tool_calls"][0]["function"]["name"] == "shell"
    assert messages[3] == {
        "role": "tool",
        "tool_call_id": "c",
        "content": "exec command rejected by user",
    }
    assert messages[4]["tool_calls"][0]["function"]["name"] == "apply_patch"
    assert messages[5]["content"].startswith("Success. Updated the following files:\n/w/a")


# -- the shell tool's policy (on-failure is not on the 0.169 wire, only in rules) --------------


@attrs.define
class StubTurn:
    approval_policy: str
    outcomes: list[CommandOutcome]
    cwd: str = "/work"
    calls: list[tuple[str, bool | None]] = attrs.Factory(list)

    async def run_command(
        self, command: str, *, reason: str | None = None, ask: bool | None = None
    ) -> CommandOutcome:
        self.calls.append((command, ask))
        return self.outcomes.pop(0)


async def test_on_failure_reruns_after_asking() -> None:
    turn = StubTurn(
        "on-failure",
        [CommandOutcome(False, 1, "denied\n"), CommandOutcome(False, 0, "ok\n")],
    )
    result: Any = orjson.loads(await shell(turn, {"command": ["make"]}))  # type: ignore[arg-type]
    assert turn.calls == [("make", False), ("make", True)]
    assert result["output"] == "ok\n"


async def test_on_failure_keeps_the_first_result_when_the_rerun_is_declined() -> None:
    turn = StubTurn("on-failure", [CommandOutcome(False, 2, "bad\n"), CommandOutcome(True)])
    result: Any = orjson.loads(await shell(turn, {"command": ["make"]}))  # type: ignore[arg-type]
    assert result["metadata"]["exit_code"] == 2


async def test_workdir_and_string_commands() -> None:
    turn = StubTurn("never", [CommandOutcome(False, 0, "")])
    await shell(turn, {"command": "ls -la", "workdir": "sub dir"})  # type: ignore[arg-type]
    assert turn.calls == [("cd '/work/sub dir' && ls -la", False)]


def test_images_become_image_url_parts(tmp_path: Path) -> None:
    png = tmp_path / "shot.png"
    png.write_bytes(b"\x89PNG fake")
    content = user_content(
        [
            {"type": "text", "text": "what is this?"},
            {"type": "image", "url": "https://example.invalid/a.png"},
            {"type": "localImage", "path": str(png)},
            {"type": "localImage", "path": str(tmp_path / "missing.png")},
        ]
    )
    assert isinstance(content, list)
    assert content[0] == {"type": "text", "text": "what is this?"}
    urls = [part["image_url"]["url"] for part in content[1:]]
    assert urls[0] == "https://example.invalid/a.png"
    assert urls[1] == "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
    assert len(urls) == 2
    assert user_content([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "a\nb"


def test_injected_items_go_where_they_were_added() -> None:
    def turn(turn_id: str, text: str) -> dict[str, Any]:
        return {
            "id": turn_id,
            "items": [{"type": "userMessage", "content": [{"type": "text", "text": text}]}],
        }

    side = {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "s"}],
    }
    call = {"type": "function_call", "call_id": "k", "name": "lookup", "arguments": '{"q": 1}'}
    output = {"type": "function_call_output", "call_id": "k", "output": "found"}
    orphan = {"type": "function_call", "call_id": "lost", "name": "x", "arguments": "{}"}
    injected = [
        (None, side),
        ("t1", {"type": "message", "role": "assistant", "content": "after one"}),
        ("t1", call),
        ("t1", output),
        ("t1", orphan),  # no output: a Chat Completions endpoint would refuse it
        ("t1", {"type": "reasoning", "summary": []}),  # not sent back
        ("compacted-away", {"type": "message", "role": "user", "content": "early"}),
    ]
    messages = history_messages([turn("t1", "one"), turn("t2", "two")], None, injected)
    assert messages == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "early"},
        {"role": "user", "content": "one"},
        {
            "role": "assistant",
            "content": "after one",
            "tool_calls": [
                {
                    "id": "k",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q":1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "k", "content": "found"},
        {"role": "user", "content": "two"},
    ]
