"""Log lines are JSON, carry no secrets wherever they hide, and keep a traceback's cause."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery

from videopoll.logs import JsonFormatter

REPO = Path(__file__).resolve().parents[1]


def line(record: logging.LogRecord) -> dict[str, object]:
    out: dict[str, object] = json.loads(JsonFormatter().format(record))
    return out


def make(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "t", "levelno": logging.INFO, "levelname": "INFO",
                                    "msg": msg})
    record.__dict__.update(extra)
    return record


def test_secrets_inside_nested_extras_are_redacted() -> None:
    out = line(make("calling provider", request={
        "headers": {"Authorization": "Bearer kie-secret-123456"},
        "url": "https://cdn.example/v.mp4?X-Amz-Signature=deadbeef",
        "attempts": [1, 2]}))
    text = json.dumps(out)
    assert "kie-secret-123456" not in text and "deadbeef" not in text
    assert out["request"]["attempts"] == [1, 2]  # type: ignore[index]


def test_a_long_traceback_keeps_its_cause() -> None:
    # two functions that call each other: CPython folds a frame repeated in a row into one
    # "[Previous line repeated …]" line, which would keep the traceback short
    def ping(n: int) -> None:
        if n == 0:
            raise ValueError("the real cause: token=abc123secret")
        pong(n - 1)

    def pong(n: int) -> None:
        ping(n)

    try:
        ping(40)
    except ValueError:
        record = make("boom", exc_info=sys.exc_info())
    assert record.exc_info is not None
    assert len(JsonFormatter().formatException(record.exc_info)) > 5000
    exc = str(line(record)["exc"])
    assert "ValueError: the real cause" in exc  # the last line survives the cut
    assert "Traceback (most recent call last)" in exc
    assert "abc123secret" not in exc
    assert len(exc) < 4200


def test_extras_that_json_cannot_encode_are_still_logged_and_redacted() -> None:
    loop: dict[str, object] = {"api_key": "kie-loop-secret"}
    loop["self"] = loop
    out = line(make("odd extras", by_pair={("a", "b"): "Bearer kie-pair-secret-1"}, loop=loop))
    text = json.dumps(out)
    assert out["msg"] == "odd extras"
    assert "kie-pair-secret-1" not in text and "kie-loop-secret" not in text


def worker_output(redis_server: str, level: str, tmp_path: Path) -> str:
    """Run a real worker until it has consumed a message, then stop it; its output.

    The message names a task nobody registered, so the worker logs an error for it at any
    level: proof it was up and consuming, whatever else ``--loglevel`` hid.
    """
    broker = f"{redis_server}/13"
    Celery(broker=broker).send_task("videopoll.no_such_task", queue="videopoll")
    env = {**os.environ, "REDIS_URL": broker, "PYTHONPATH": str(REPO)}
    log = tmp_path / f"worker-{level}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "videopoll.celery_app", "worker",
             "--pool", "threads", "--concurrency", "1", "--loglevel", level,
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=REPO, env=env, stdout=out, stderr=out, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and MARKER not in log.read_text(errors="replace"):
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return log.read_text(errors="replace")


MARKER = "Received unregistered task of type 'videopoll.no_such_task'"


@pytest.mark.slow
def test_the_worker_obeys_loglevel(redis_server: str, tmp_path: Path) -> None:
    info = worker_output(redis_server, "INFO", tmp_path)
    warning = worker_output(redis_server, "WARNING", tmp_path)
    assert MARKER in info and MARKER in warning  # both workers ran and logged
    assert '"level": "info"' in info
    assert '"level": "info"' not in warning
