"""Push callbacks: verified as the provider signs them, and able only to wake a poll."""

from __future__ import annotations

import time

import pytest
import redis
from flask.testing import FlaskClient
from pydantic import SecretStr

from tests.conftest import with_kie
from tests.test_store import make_job
from videopoll.api import create_app
from videopoll.errors import CallbackRejected
from videopoll.polling import callback_url_for
from videopoll.providers.base import CallbackRequest
from videopoll.providers.kie.common import sign_callback, verify_callback
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings

KEY = "kie-webhook-hmac-key"
NOW = 1_800_000_000.0


def signed(task: str, at: float = NOW, key: str = KEY) -> dict[str, str]:
    stamp = str(int(at))
    return {"X-Webhook-Timestamp": stamp, "X-Webhook-Signature": sign_callback(key, task, stamp)}


def body(task: str, snake: bool = False) -> dict[str, object]:
    data = {"task_id" if snake else "taskId": task, "info": {"resultUrls": ["https://x/v.mp4"]}}
    return {"code": 200, "msg": "ok", "data": data}


def callback_task_id(payload: object, headers: dict[str, str], key: str | None, now: float,
                     max_age: float) -> str | None:
    req = CallbackRequest(raw=b"", body=payload,
                          headers={k.lower(): v for k, v in headers.items()}, now=now)
    return verify_callback(req, key, max_age).task_id


def test_a_signed_callback_names_its_task() -> None:
    assert callback_task_id(body("t1"), signed("t1"), KEY, NOW, 300) == "t1"
    assert callback_task_id(body("t4k", snake=True), signed("t4k"), KEY, NOW, 300) == "t4k"


@pytest.mark.parametrize(("headers", "why"), [
    ({}, "missing"),
    (signed("t1", key="another-key"), "bad"),
    (signed("t2"), "bad"),                     # a signature for another task
    (signed("t1", at=NOW - 600), "too old"),   # a replay, ten minutes late
    ({"X-Webhook-Timestamp": "soon", "X-Webhook-Signature": "x"}, "not a number"),
])
def test_forged_or_stale_callbacks_are_refused(headers: dict[str, str], why: str) -> None:
    with pytest.raises(CallbackRejected, match=why) as info:
        callback_task_id(body("t1"), headers, KEY, NOW, 300)
    assert info.value.status == 401


def test_without_a_key_callbacks_are_taken_unsigned_and_a_body_must_name_a_task() -> None:
    assert callback_task_id(body("t1"), {}, None, NOW, 300) == "t1"
    with pytest.raises(CallbackRejected) as info:
        callback_task_id({"code": 200, "data": {}}, {}, None, NOW, 300)
    assert info.value.status == 400


@pytest.fixture
def crt(settings: Settings) -> Runtime:
    return build_runtime(with_kie(settings, webhook_hmac_key=KEY))


@pytest.fixture
def client(crt: Runtime) -> FlaskClient:
    return create_app(crt.settings, crt).test_client()


def queued(rt: Runtime) -> int:
    """Poll messages queued on the runtime's broker (its job store's Redis)."""
    broker = redis.Redis.from_url(rt.settings.effective_broker_url)
    return int(broker.llen("videopoll"))


def test_a_verified_callback_wakes_the_jobs_poll_and_a_forged_one_does_not(
    crt: Runtime, client: FlaskClient
) -> None:
    job = make_job(crt)  # provider task "t1", indexed as task:kie_veo:t1
    crt.store.create(job)
    before = queued(crt)
    forged = client.post("/callbacks/kie_veo", json=body("t1"),
                         headers=signed("t1", at=time.time(), key="guess"))
    assert forged.status_code == 401 and forged.get_json()["error"] == "callback_rejected"
    assert queued(crt) == before
    ok = client.post("/callbacks/kie_veo", json=body("t1"), headers=signed("t1", at=time.time()))
    assert (ok.status_code, ok.get_json()) == (200, {"status": "accepted"})
    assert queued(crt) == before + 1
    stored = crt.store.get(job.job_id)
    assert stored is not None and stored.status.value == "queued"  # the body decided nothing


def test_callbacks_for_unknown_tasks_or_families(crt: Runtime, client: FlaskClient) -> None:
    unknown = client.post("/callbacks/kie_veo", json=body("nobody"),
                          headers=signed("nobody", at=time.time()))
    assert (unknown.status_code, unknown.get_json()) == (200, {"status": "ignored"})
    assert client.post("/callbacks/acme", json=body("t")).status_code == 404


def test_without_a_key_the_callback_url_token_is_the_proof(settings: Settings) -> None:
    """KIE signs only once the account has a webhookHmacKey (providers.md §1.5): without our
    copy of it, the URL we give KIE carries our token, and a callback without it is refused."""
    rt = build_runtime(settings.model_copy(update={
        "public_base_url": "https://videos.example",
        "callback_url_secret": SecretStr("url-secret")}))
    client = create_app(rt.settings, rt).test_client()
    rt.store.create(make_job(rt))
    url = callback_url_for(rt, "kie_veo")
    assert url is not None and "?token=" in url
    before = queued(rt)
    anyone = client.post("/callbacks/kie_veo", json=body("t1"))
    assert anyone.status_code == 401 and queued(rt) == before
    ok = client.post(url.removeprefix("https://videos.example"), json=body("t1"))
    assert (ok.status_code, ok.get_json()) == (200, {"status": "accepted"})
    assert queued(rt) == before + 1
    assert "?token=" not in (callback_url_for(
        build_runtime(with_kie(rt.settings, webhook_hmac_key=KEY)), "kie_veo") or "?token=")
