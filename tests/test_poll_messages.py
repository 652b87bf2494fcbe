"""Poll messages written straight onto the broker's list read back, in a worker, as the very
request Celery's own publish would have made; and a submission queues its first poll in the
same write as its record."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from celery.worker.request import Request

from tests.conftest import with_kie
from videopoll.celery_app import app
from videopoll.fake_provider import FakeProvider
from videopoll.models import JobRecord, PollVideoRequest
from videopoll.poll_messages import POLL_QUEUE, poll_message, publish_poll
from videopoll.polling import Next, advance
from videopoll.providers import get_model
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings
from videopoll.submission import poll_job_record
from videopoll.tasks import poll as poll_tasks
from videopoll.tasks.poll import poll_job

JOB = "job_0123456789abcdef0123456789abcdef"


def worker_request(payload: str) -> Request:
    """What a worker makes of one item of the queue list (kombu's Redis channel, then
    Celery's request), without running it."""
    with app.connection_for_read() as conn:
        message = conn.default_channel.message_to_python(json.loads(payload))
        return Request(message, app=app)


def same(value: Any) -> Any:
    """``(None, None)`` and ``[None, None]`` are the same time limits to the worker."""
    return tuple(value) if isinstance(value, list | tuple) else value


def celery_published(broker_url: str, countdown: float) -> str:
    """The item Celery's own ``apply_async`` leaves on the queue list."""
    client = redis.Redis.from_url(broker_url, decode_responses=True)
    client.delete(POLL_QUEUE)
    poll_job.apply_async((JOB, 7), countdown=countdown)
    item = client.rpop(POLL_QUEUE)
    assert isinstance(item, str)
    return item


@pytest.mark.parametrize("countdown", [0.0, 30.0])
def test_the_worker_reads_our_message_as_it_reads_celerys(countdown: float) -> None:
    ours = worker_request(poll_message(JOB, 7, countdown).payload)
    theirs = worker_request(celery_published(app.conf.broker_url, countdown))
    seen: dict[str, Any] = {}
    for name in ("name", "args", "kwargs", "argsrepr", "kwargsrepr", "time_limits",
                 "ignore_result", "delivery_info", "parent_id", "expires",
                 "stamped_headers", "stamps", "replaced_task_nesting", "group", "groups"):
        seen[name], celerys = same(getattr(ours, name)), same(getattr(theirs, name))
        assert seen[name] == celerys, name
    assert seen["args"] == (JOB, 7) and seen["name"] == "videopoll.poll_job"
    assert (ours.eta is None) == (theirs.eta is None) == (countdown == 0)
    if countdown:
        assert abs(ours.eta.timestamp() - theirs.eta.timestamp()) < 2.0
        assert ours.eta.tzinfo is not None
    assert ours.id != theirs.id and ours.task.name == poll_job.name
    assert ours.reply_to is None  # where a result would go: the poll task has none


@pytest.mark.parametrize("job_id", ['job_"quoted"\\', "job_%(id)s", "job_ünï\u2028"])
def test_any_job_id_reaches_the_worker_intact(job_id: str) -> None:
    assert worker_request(poll_message(job_id, 4, 5.0).payload).args == [job_id, 4]


def test_the_eta_is_the_countdown_from_now_in_utc() -> None:
    now = 1_800_000_000.25
    payload = json.loads(poll_message(JOB, 2, 45.5, now=now).payload)
    eta = datetime.fromisoformat(payload["headers"]["eta"])
    assert eta.tzinfo == UTC and eta.timestamp() == now + 45.5


def test_every_message_has_its_own_task_id_and_delivery_tag() -> None:
    messages = [json.loads(poll_message(JOB, 1).payload) for _ in range(200)]
    assert len({m["headers"]["id"] for m in messages}) == 200
    assert len({m["properties"]["delivery_tag"] for m in messages}) == 200


def test_our_message_is_about_half_the_size_of_celerys() -> None:
    """It is held in Redis for every job waiting out its countdown."""
    ours = len(poll_message(JOB, 7, 30).payload)
    theirs = len(celery_published(app.conf.broker_url, 30))
    assert ours < 0.65 * theirs, (ours, theirs)


def new_job(rt: Runtime, keys: list[str]) -> JobRecord:
    return JobRecord(job_id=f"job_{len(keys)}_{time.monotonic_ns()}", kind="poll", model="veo3",
                     family="kie_veo", session_id="s", provider_task_id="t1",
                     next_poll_at=time.time(), deadline_at=time.time() + 60,
                     idempotency_keys=keys)


def test_a_created_job_and_its_first_poll_are_one_write(rt: Runtime) -> None:
    assert rt.first_poll_in_create
    job = new_job(rt, ["task:kie_veo:t1"])
    stored, created = rt.store.create(job, poll_message(job.job_id, 1))
    assert created and rt.store.redis.llen(POLL_QUEUE) == 1
    again = new_job(rt, ["task:kie_veo:t1"])  # the same provider task, posted twice
    stored_again, created_again = rt.store.create(again, poll_message(again.job_id, 1))
    assert not created_again and stored_again.job_id == stored.job_id
    assert rt.store.redis.llen(POLL_QUEUE) == 1  # no message for the job never created
    item = rt.store.redis.rpop(POLL_QUEUE)
    assert worker_request(str(item)).args == [job.job_id, 1]


def test_a_broker_elsewhere_gets_its_own_client_and_a_publish(settings: Settings) -> None:
    other = settings.redis_url.rsplit("/", 1)[0] + "/13"
    redis.Redis.from_url(other).delete(POLL_QUEUE)
    rt = build_runtime(settings.model_copy(update={"broker_url": other}))
    assert rt.direct_broker is not None and not rt.first_poll_in_create
    publish_poll(rt, JOB, 3, 10.0)
    item = redis.Redis.from_url(other, decode_responses=True).rpop(POLL_QUEUE)
    assert worker_request(str(item)).args == [JOB, 3]
    assert rt.store.redis.llen(POLL_QUEUE) == 0


@pytest.mark.parametrize("change", [{"broker_url": "amqp://guest@127.0.0.1:5672//"},
                                    {"direct_publish": False}])
def test_other_brokers_and_the_switch_publish_through_celery(
    settings: Settings, change: dict[str, object]
) -> None:
    rt = build_runtime(settings.model_copy(update=change))
    assert rt.direct_broker is None and not rt.first_poll_in_create


def test_a_poll_turn_queues_its_next_poll_in_the_same_write(
    settings: Settings, fake: FakeProvider
) -> None:
    """One round trip for the record and its next message; a fenced-off turn queues none."""
    rt = build_runtime(with_kie(settings, base_url=fake.base_url))
    assert rt.first_poll_in_create
    rt.store.redis.delete(POLL_QUEUE)
    req = PollVideoRequest.model_validate(
        {"sessionId": "s", "taskId": f"veo_never_{time.time_ns()}", "model": "veo3"})
    job, _ = rt.store.create(poll_job_record(req, get_model("veo3"), rt.settings, None))
    step = advance(rt, job.job_id, job.poll_token)
    assert step.action == "poll" and step.queued
    assert rt.store.redis.llen(POLL_QUEUE) == 1
    request = worker_request(str(rt.store.redis.rpop(POLL_QUEUE)))
    assert request.args == [job.job_id, step.token] and request.eta is not None
    assert advance(rt, job.job_id, job.poll_token).action == "stop"  # that turn's duplicate
    assert rt.store.redis.llen(POLL_QUEUE) == 0


def test_a_queued_step_is_not_published_again(monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[tuple[str, int]] = []
    monkeypatch.setattr(poll_tasks, "publish_poll",
                        lambda _rt, job_id, token, countdown: published.append((job_id, token)))
    monkeypatch.setattr(poll_tasks, "get_runtime", lambda: None)
    poll_tasks.carry_out(JOB, Next("poll", token=4, countdown=1.0, queued=True))
    assert published == []  # a second message would be a second provider call
    poll_tasks.carry_out(JOB, Next("poll", token=4, countdown=1.0))
    assert published == [(JOB, 4)]


def test_with_the_broker_elsewhere_a_turn_publishes_its_next_poll(
    settings: Settings, fake: FakeProvider
) -> None:
    other = settings.redis_url.rsplit("/", 1)[0] + "/13"
    rt = build_runtime(with_kie(settings, base_url=fake.base_url).model_copy(
        update={"broker_url": other}))
    rt.store.redis.delete(POLL_QUEUE)
    req = PollVideoRequest.model_validate(
        {"sessionId": "s", "taskId": f"veo_never_{time.time_ns()}", "model": "veo3"})
    job, _ = rt.store.create(poll_job_record(req, get_model("veo3"), rt.settings, None))
    step = advance(rt, job.job_id, job.poll_token)
    assert step.action == "poll" and not step.queued
    assert rt.store.redis.llen(POLL_QUEUE) == 0
