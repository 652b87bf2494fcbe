"""The demo's process supervisor: restart with backoff, give up on a crash loop, leave nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.conftest import alive
from videopoll.supervise import RestartPolicy, Supervisor, read_procfile

FAST = RestartPolicy(stable_seconds=2.0, max_fast_crashes=3, first_backoff_seconds=0.05,
                     max_backoff_seconds=0.2, stop_grace_seconds=2.0)


def test_procfile_lines_keep_their_order_and_skip_comments(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("# the stack\nweb: gunicorn app\n\nworker: celery -A x worker -Q a,b\n")

    assert read_procfile(procfile) == {"web": "gunicorn app", "worker": "celery -A x worker -Q a,b"}


def test_a_process_that_dies_is_restarted_and_the_others_keep_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    sup = Supervisor({"steady": "sleep 30",
                      "flaky": f"sh -c 'echo run >> {runs}; sleep 0.5; exit 1'"}, FAST)
    timer = threading.Timer(2.0, sup._on_signal, args=(15, None))  # Ctrl-C after 2 s
    timer.start()

    assert sup.run() == 0  # stopped by the signal, not given up

    assert runs.read_text().count("run") >= 3  # died every 0.5 s and came back each time
    out = capsys.readouterr().out
    assert out.count("steady started") == 1, out  # untouched by the other's crashes
    assert out.count("flaky started") >= 3, out
    steady = sup.children[0].proc
    assert steady is not None and steady.returncode is not None  # stopped with the stack


def test_repeated_fast_crashes_give_up_and_stop_everything(tmp_path: Path) -> None:
    sup = Supervisor({"steady": "sleep 30", "broken": "exit 3"}, FAST)
    started = time.monotonic()

    assert sup.run() == 1

    assert time.monotonic() - started < 10
    assert all(c.proc is not None and not alive(c.proc.pid) for c in sup.children)


@pytest.mark.parametrize("uptimes, backoffs", [
    ([0.1, 0.1], [0.05, 0.1]),  # fast crashes double the wait
    ([0.1, 5.0, 0.1], [0.05, 0.05, 0.1]),  # a healthy run resets it
])
def test_backoff_doubles_and_resets_after_a_healthy_run(
    uptimes: list[float], backoffs: list[float]
) -> None:
    child = Supervisor({"x": "true"}, FAST).children[0]
    seen = []
    for uptime in uptimes:
        child.started_at = time.monotonic() - uptime
        assert child.on_exit(1)
        seen.append(child.backoff)
    assert seen == backoffs
