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
    def deep(n: int) -> None:
        if n == 0:
            raise ValueError("the real cause: token=abc123secret")
        deep(n - 1)

    try:
        deep(80)
    except ValueError:
        record = make("boom", exc_info=sys.exc_info())
    exc = str(line(record)["exc"])
    assert "ValueError: the real cause" in exc  # the last line survives the cut
    assert "Traceback (most recent call last)" in exc
    assert "abc123secret" not in exc
    assert len(exc) < 4200


def worker_output(redis_server: str, level: str, tmp_path: Path, wait: float | None) -> str:
    """Run a real worker; stop it once it is ready (or after ``wait`` seconds)."""
    env = {**os.environ, "REDIS_URL": f"{redis_server}/13", "PYTHONPATH": str(REPO)}
    log = tmp_path / f"worker-{level}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "videopoll.celery_app", "worker",
             "--pool", "threads", "--concurrency", "1", "--loglevel", level,
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=REPO, env=env, stdout=out, stderr=out, start_new_session=True)
        try:
            deadline = time.monotonic() + (wait or 30)
            while time.monotonic() < deadline:
                if wait is None and " ready." in log.read_text(errors="replace"):
                    break
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return log.read_text(errors="replace")


@pytest.mark.slow
def test_the_worker_obeys_loglevel(redis_server: str, tmp_path: Path) -> None:
    began = time.monotonic()
    info = worker_output(redis_server, "INFO", tmp_path, None)
    took = time.monotonic() - began
    warning = worker_output(redis_server, "WARNING", tmp_path, took + 2)
    assert '"level": "info"' in info
    assert '"level": "info"' not in warning
