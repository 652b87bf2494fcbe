"""Buttons on a delivered video: verified, owned by the chat, one job per press, real effects."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr

from tests.conftest import with_kie
from tests.test_polling import drive_from
from tests.test_store import make_job
from videopoll.api import create_app
from videopoll.fake_provider import FakeProvider
from videopoll.models import GenerationSpec, JobRecord, JobStatus
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings

SECRET = "tg-webhook-secret"


@pytest.fixture
def brt(settings: Settings, fake: FakeProvider) -> Runtime:
    return build_runtime(with_kie(settings, base_url=fake.base_url).model_copy(update={
        "telegram_webhook_secret": SecretStr(SECRET)}))


@pytest.fixture
def client(brt: Runtime) -> FlaskClient:
    return create_app(brt.settings, brt).test_client()


def delivered_job(rt: Runtime, chat: int = 77, **fields: Any) -> JobRecord:
    job = make_job(rt, f"job_{uuid.uuid4().hex}", keys=[])
    job.chat_id = chat
    job.provider_task_id = f"veo_ok1_{uuid.uuid4().hex[:6]}"
    job.spec = GenerationSpec(model="veo3", prompt="a heron at dawn")
    for k, v in fields.items():
        setattr(job, k, v)
    rt.store.create(job)

    def done(j: JobRecord) -> None:
        j.status = JobStatus.SUCCEEDED

    rt.store.update(job.job_id, done)
    return job


def press(client: FlaskClient, action: str, job_id: str, chat: int = 77,
          secret: str = SECRET) -> Any:
    update = {"update_id": 1, "callback_query": {
        "id": uuid.uuid4().hex, "data": f"{action}:{job_id}", "from": {"id": chat},
        "message": {"message_id": 5, "chat": {"id": chat, "type": "private"}}}}
    return client.post("/telegram/webhook", json=update,
                       headers={"X-Telegram-Bot-Api-Secret-Token": secret})


def children(rt: Runtime, parent: str) -> list[JobRecord]:
    jobs = [rt.store.get(k.split(":")[-1]) for k in rt.store.redis.keys("videopoll:job:*")]
    return [j for j in jobs if j is not None and j.parent_job_id == parent]


def test_the_secret_token_is_verified(brt: Runtime, client: FlaskClient) -> None:
    job = delivered_job(brt)
    assert press(client, "ext", job.job_id, secret="wrong").status_code == 401
    assert children(brt, job.job_id) == []


def test_a_press_from_another_chat_changes_nothing(brt: Runtime, client: FlaskClient) -> None:
    job = delivered_job(brt, chat=77)
    resp = press(client, "ext", job.job_id, chat=666)
    assert resp.get_json()["text"] == "This button belongs to another chat."
    assert children(brt, job.job_id) == []


def test_extend_twice_tapped_starts_one_linked_job(brt: Runtime, client: FlaskClient) -> None:
    job = delivered_job(brt)
    first, second = press(client, "ext", job.job_id), press(client, "ext", job.job_id)
    assert first.get_json()["method"] == "answerCallbackQuery"
    assert (first.get_json()["text"], second.get_json()["text"]) == (
        "Extending your video…", "Already on it.")
    [child] = children(brt, job.job_id)
    assert child.spec is not None and child.spec.extend_task_id == job.provider_task_id
    assert (child.kind, child.chat_id, child.model) == ("generate", 77, "veo3")


def test_an_extend_job_delivers_the_stitched_video(brt: Runtime, client: FlaskClient,
                                                    fake: FakeProvider) -> None:
    job = delivered_job(brt)
    press(client, "ext", job.job_id)
    [child] = children(brt, job.job_id)
    assert drive_from(brt, child.job_id, 0)[-1] == "deliver"
    done = brt.store.get(child.job_id)
    assert done is not None and done.provider_task_id is not None
    assert done.output_url == f"{fake.base_url}/files/{done.provider_task_id}.mp4"  # full video


def test_get_1080p_polls_the_hd_rendition_until_ready(brt: Runtime, client: FlaskClient,
                                                      fake: FakeProvider) -> None:
    job = delivered_job(brt)
    assert press(client, "hd", job.job_id).get_json()["text"] == "Getting the 1080p version…"
    [child] = children(brt, job.job_id)
    assert (child.kind, child.variant, child.provider_task_id) == (
        "poll", "1080p", job.provider_task_id)
    assert drive_from(brt, child.job_id, 1) == ["poll", "poll", "deliver"]  # twice "processing"
    done = brt.store.get(child.job_id)
    assert done is not None
    assert done.output_url == f"{fake.base_url}/files/{job.provider_task_id}_1080p.mp4"


def test_get_4k_asks_the_4k_endpoint_until_it_has_the_video(
    brt: Runtime, client: FlaskClient, fake: FakeProvider
) -> None:
    job = delivered_job(brt)
    assert press(client, "uhd", job.job_id).get_json()["text"] == "Getting the 4K version…"
    [child] = children(brt, job.job_id)
    assert (child.variant, child.provider_task_id) == ("4k", job.provider_task_id)
    # started, then twice "4k is processing" (422), then the 4K video
    assert drive_from(brt, child.job_id, 1) == ["poll", "poll", "poll", "deliver"]
    done = brt.store.get(child.job_id)
    assert done is not None
    assert done.output_url == f"{fake.base_url}/files/{job.provider_task_id}_4k.mp4"
    assert fake.stats()["polls"][f"4k:{job.provider_task_id}"] == 4


def test_a_rendition_job_offers_no_further_renditions(brt: Runtime) -> None:
    from videopoll.notify import buttons_for

    job = delivered_job(brt)
    assert [b.action for b in buttons_for(job)] == ["pub", "regen", "ext", "hd", "uhd"]
    hd = job.model_copy(update={"variant": "1080p"})
    assert [b.action for b in buttons_for(hd)] == ["pub", "regen", "ext"]
    market = job.model_copy(update={"family": "kie_market", "model": "sora-2"})
    assert [b.action for b in buttons_for(market)] == ["pub", "regen"]


def test_regenerate_without_a_callback_resubmits_the_original(
    brt: Runtime, client: FlaskClient
) -> None:
    job = delivered_job(brt)
    press(client, "regen", job.job_id)
    [child] = children(brt, job.job_id)
    assert child.spec is not None and child.spec.prompt == "a heron at dawn"
    assert child.spec.extend_task_id is None and child.provider_task_id is None


def test_publish_is_forwarded_to_the_caller_only(brt: Runtime, client: FlaskClient) -> None:
    job = delivered_job(brt, callback_url="https://n8n.example/webhook/resume")
    assert press(client, "pub", job.job_id).get_json()["text"] == "Sent."
    assert children(brt, job.job_id) == []
    alone = delivered_job(brt)
    assert press(client, "pub", alone.job_id).get_json()["text"] == (
        "Publishing is not set up for this video.")


def test_other_updates_are_ignored(client: FlaskClient) -> None:
    resp = client.post("/telegram/webhook", json={"update_id": 2, "message": {"text": "hi"}},
                       headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert (resp.status_code, resp.get_json()) == (200, {})
