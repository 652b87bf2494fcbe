"""/healthz tells an operator when the safety net (beat's sweep) has stopped."""

from __future__ import annotations

import time

from videopoll.api import create_app
from videopoll.runtime import Runtime


def health(rt: Runtime) -> tuple[int, dict[str, object]]:
    resp = create_app(rt.settings, rt).test_client().get("/healthz")
    body = resp.get_json()
    assert isinstance(body, dict)
    return resp.status_code, body


def test_a_recent_sweep_is_healthy(rt: Runtime) -> None:
    rt.store.sweep_ran(time.time() - 1)
    _, body = health(rt)
    assert body["checks"]["beat"] == "ok"  # type: ignore[index]
    assert 0 < float(body["lastSweepAgeSeconds"]) < 5  # type: ignore[arg-type]


def test_a_stale_sweep_turns_healthz_503_naming_beat(rt: Runtime) -> None:
    rt.store.sweep_ran(time.time() - 3600)
    status, body = health(rt)
    assert status == 503
    assert str(body["checks"]["beat"]).startswith("error: last sweep")  # type: ignore[index]


def test_no_sweep_yet_is_fine_only_just_after_start(rt: Runtime) -> None:
    _, body = health(rt)
    assert body["checks"]["beat"] == "ok"  # type: ignore[index]
    app = create_app(rt.settings, rt)
    app.extensions["videopoll_started_at"] = time.time() - 3600
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"]["beat"] == "error: no sweep has run"


def test_an_unreadable_record_answers_a_json_error_naming_it(rt: Runtime) -> None:
    rt.store.redis.set(rt.store.job_key("job_old"), "[" * 300 + "]" * 300)
    resp = create_app(rt.settings, rt).test_client().get("/jobs/job_old")
    assert resp.status_code == 500
    assert resp.get_json()["error"] == "job_unreadable"

