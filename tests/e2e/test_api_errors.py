"""Bad input over real HTTP: a JSON error naming the field and reason, never a traceback.

Field-by-field validation runs in-process in ``tests/test_api.py``; these need the server.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

from tests.e2e.stack import BIN, Stack

GOOD_POLL = {"sessionId": "user_123", "taskId": "veo_abc456", "model": "veo3", "attempt": 1}
GOOD_GEN = {"sessionId": "u", "model": "veo3", "prompt": "a cat", "aspectRatio": "16:9"}


def test_oversized_body_is_413(stack: Stack) -> None:
    resp = requests.post(f"{stack.api}/jobs", json={**GOOD_GEN, "metadata": {"x": "y" * 70_000}},
                         timeout=10)
    assert (resp.status_code, resp.json()["error"]) == (413, "payload_too_large")


def test_unknown_job_is_404_json(stack: Stack) -> None:
    for resp in (requests.get(f"{stack.api}/jobs/job_missing", timeout=10),
                 requests.post(f"{stack.api}/jobs/job_missing/cancel", timeout=10)):
        assert (resp.status_code, resp.json()["error"]) == (404, "not_found")


def test_unknown_route_and_method_are_json(stack: Stack) -> None:
    assert requests.get(f"{stack.api}/nope", timeout=10).json()["error"] == "not_found"
    resp = requests.get(f"{stack.api}/webhook/poll-video", timeout=10)
    assert (resp.status_code, resp.json()["error"]) == (405, "method_not_allowed")


def test_healthz_reports_redis_and_broker(stack: Stack) -> None:
    body = requests.get(f"{stack.api}/healthz", timeout=10).json()
    assert body["status"] == "ok"
    assert body["checks"] == {"redis": "ok", "broker": "ok", "beat": "ok"}


def test_healthz_names_the_failed_dependency(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.procs["api"].terminate()
    stack.procs["api"].wait()
    bad = dict(stack.env, REDIS_URL="redis://127.0.0.1:1/0", BROKER_URL="redis://127.0.0.1:1/0")
    stack.env = bad
    stack._spawn("api", [str(BIN / "gunicorn"), "--workers", "1",
                         "--bind", f"127.0.0.1:{stack.api_port}", "videopoll.api:create_app()"])
    Stack.wait_until(lambda: _status(stack) == 503, 20, "unhealthy API")
    body = requests.get(f"{stack.api}/healthz", timeout=10).json()
    assert body["checks"]["redis"].startswith("error")
    assert body["checks"]["broker"].startswith("error")


def _status(stack: Stack) -> int:
    try:
        return requests.get(f"{stack.api}/healthz", timeout=5).status_code
    except requests.RequestException:
        return 0


def test_api_token_is_required_when_set(make_stack: Callable[..., Stack]) -> None:
    secured = make_stack(API_TOKEN="s3cret")
    url = f"{secured.api}/webhook/poll-video"
    no_token = requests.post(url, json=GOOD_POLL, timeout=10)
    wrong = requests.post(url, json=GOOD_POLL, headers={"Authorization": "Bearer nope"},
                          timeout=10)
    right = requests.post(url, json=GOOD_POLL, headers={"Authorization": "Bearer s3cret"},
                          timeout=10)
    assert (no_token.status_code, wrong.status_code, right.status_code) == (401, 401, 202)
    assert no_token.json()["error"] == "unauthorized"
