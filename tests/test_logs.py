"""Logging: the `LOG_FORMAT` rule (codex-source-spec §10.8), JSON lines, stderr only."""

from __future__ import annotations

import io
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from appserver.logs import (
    LOG_FORMAT_ENV,
    LOG_LEVEL_ENV,
    JsonFormatter,
    LogFormat,
    configure_logging,
    log_format_from_env_value,
)

# -- §10.8 ----------------------------------------------------------------------------------


def test_log_format_from_env_value_matches_json_values_case_insensitively() -> None:
    for value in ["json", "JSON", "  Json  "]:
        assert log_format_from_env_value(value) is LogFormat.JSON, value


def test_log_format_from_env_value_defaults_for_non_json_values() -> None:
    for value in [None, "", "text", "jsonl"]:
        assert log_format_from_env_value(value) is LogFormat.DEFAULT, value


# -- JsonFormatter --------------------------------------------------------------------------


@contextmanager
def root_logger_restored() -> Iterator[logging.Logger]:
    """`configure_logging` replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def json_lines(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n")
    records = [orjson.loads(line) for line in text.splitlines()]
    for record in records:
        assert isinstance(record, dict)
    return records


def capture_json(logger_name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(logger_name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_json_formatter_writes_one_object_per_line() -> None:
    logger, stream = capture_json("appserver.test.json")
    logger.info("first")
    logger.warning("second %s", "line\nwith a newline")
    logger.debug('quote " and unicode é')
    first, second, third = json_lines(stream.getvalue())
    assert first["level"] == "INFO"
    assert first["target"] == "appserver.test.json"
    assert first["message"] == "first"
    assert second["level"] == "WARNING"
    assert second["message"] == "second line\nwith a newline"
    assert third["level"] == "DEBUG"
    assert third["message"] == 'quote " and unicode é'


def test_json_formatter_includes_extra_fields_and_exceptions() -> None:
    logger, stream = capture_json("appserver.test.extra")
    logger.info("opened", extra={"connection_id": 3, "origin": object()})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    opened, failed = json_lines(stream.getvalue())
    assert opened["connection_id"] == 3
    assert isinstance(opened["origin"], str)
    assert "exception" not in opened
    assert failed["level"] == "ERROR"
    assert failed["message"] == "failed"
    assert "ValueError: boom" in failed["exception"]
    assert "Traceback" in failed["exception"]
    for record in (opened, failed):
        for internal in ("args", "msg", "levelno", "exc_info", "pathname", "created"):
            assert internal not in record


@pytest.fixture
def non_utc_timezone() -> Iterator[None]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"  # UTC+05:30 all year
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()


@pytest.mark.usefixtures("non_utc_timezone")
def test_json_timestamp_is_utc() -> None:
    """The timestamp ends in `Z`, so it must be UTC whatever the local zone is."""
    record = logging.makeLogRecord({"name": "t", "levelname": "INFO", "msg": "m"})
    record.created = 1_700_000_000.25
    record.msecs = 250.0
    out = orjson.loads(JsonFormatter().format(record))
    expected = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert out["timestamp"] == expected + ".250Z"


# -- configure_logging ----------------------------------------------------------------------


def test_configure_logging_json_goes_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    with root_logger_restored():
        configure_logging("INFO", LogFormat.JSON)
        logging.getLogger("appserver.test.stderr").info("hello %d", 1)
        logging.getLogger("appserver.test.stderr").debug("not shown")
        captured = capsys.readouterr()
    assert captured.out == ""
    (record,) = json_lines(captured.err)
    assert record["message"] == "hello 1"
    assert record["level"] == "INFO"
    assert record["target"] == "appserver.test.stderr"


def test_configure_logging_default_format_goes_to_stderr_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with root_logger_restored():
        configure_logging("WARNING", LogFormat.DEFAULT)
        logging.getLogger("appserver.test.plain").warning("careful")
        logging.getLogger("appserver.test.plain").info("not shown")
        captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.endswith(" WARNING appserver.test.plain: careful\n")
    assert captured.err.count("\n") == 1


def test_configure_logging_reads_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, " JSON ")
    monkeypatch.setenv(LOG_LEVEL_ENV, "debug")
    with root_logger_restored() as root:
        configure_logging()
        assert root.level == logging.DEBUG
        logging.getLogger("appserver.test.env").debug("verbose")
        captured = capsys.readouterr()
    assert captured.out == ""
    assert json_lines(captured.err)[0]["message"] == "verbose"


def test_configure_logging_replaces_handlers_and_ignores_unknown_levels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with root_logger_restored() as root:
        configure_logging("LOUD", LogFormat.JSON)
        configure_logging("LOUD", LogFormat.JSON)
        assert root.level == logging.INFO
        assert len(root.handlers) == 1
        logging.getLogger("appserver.test.once").info("once")
        captured = capsys.readouterr()
    assert len(json_lines(captured.err)) == 1


def test_configure_logging_never_uses_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with root_logger_restored() as root:
        configure_logging("DEBUG")
        for handler in root.handlers:
            assert getattr(handler, "stream", None) is sys.stderr
        logging.getLogger("appserver.test.stdout").error("to stderr")
        captured = capsys.readouterr()
    assert captured.out == ""
    assert "ERROR appserver.test.stdout: to stderr" in captured.err
