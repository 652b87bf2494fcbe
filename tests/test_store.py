"""The job store's guarantees: idempotent create, fenced claims, terminal records frozen."""

from __future__ import annotations

import json
import threading
import time

import redis

from videopoll.models import JobRecord, JobStatus
from videopoll.ratelimit import Limit
from videopoll.runtime import Runtime
from videopoll.store import JobStore


def make_job(rt: Runtime, job_id: str = "job_1", keys: list[str] | None = None) -> JobRecord:
    return JobRecord(
        job_id=job_id, kind="poll", model="veo3", family="kie_veo", session_id="s",
        provider_task_id="t1", next_poll_at=time.time(), deadline_at=time.time() + 60,
        idempotency_keys=keys if keys is not None else ["task:kie_veo:t1"],
    )


def test_create_is_idempotent_on_its_keys(rt: Runtime) -> None:
    first, created = rt.store.create(make_job(rt, "job_a"))
    again, created_again = rt.store.create(make_job(rt, "job_b"))
    assert (created, created_again) == (True, False)
    assert again.job_id == first.job_id == "job_a"
    assert rt.store.get("job_b") is None


def test_concurrent_creates_make_one_job(rt: Runtime) -> None:
    winners: list[bool] = []
    threads = [
        threading.Thread(target=lambda i=i: winners.append(rt.store.create(
            make_job(rt, f"job_{i}"))[1]))
        for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert winners.count(True) == 1


def test_claim_admits_one_holder_of_a_token(rt: Runtime) -> None:
    rt.store.create(make_job(rt))
    results = []
    threads = [threading.Thread(target=lambda: results.append(rt.store.claim("job_1", 1)))
               for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [r for r in results if r is not None]
    assert len(claimed) == 1
    assert claimed[0].poll_token == 2
    assert rt.store.claim("job_1", 1) is None  # stale token
    assert rt.store.claim("job_1", 2) is not None


def test_terminal_job_never_changes_and_leaves_the_due_set(rt: Runtime) -> None:
    rt.store.create(make_job(rt))
    assert rt.store.due_jobs(time.time() + 3600) == ["job_1"]

    def cancel(j: JobRecord) -> None:
        j.status = JobStatus.CANCELED

    rt.store.update("job_1", cancel)

    def revive(j: JobRecord) -> None:
        j.status = JobStatus.RUNNING

    change = rt.store.update("job_1", revive)
    after = change.job
    assert not change.applied
    assert after is not None and after.status is JobStatus.CANCELED
    assert rt.store.claim("job_1", 1) is None
    assert rt.store.due_jobs(time.time() + 3600) == []
    ttl = rt.store.redis.ttl(rt.store.job_key("job_1"))
    assert 0 < ttl <= rt.settings.result_retention_seconds
    assert 0 < rt.store.redis.ttl(rt.store.idem_key("task:kie_veo:t1")) <= ttl
    assert [s for _, s in after.history][-1] == "canceled"


def test_stage_markers_admit_one_runner_until_released(rt: Runtime) -> None:
    owner = rt.store.begin_stage("job_1", "notify", 5)
    assert owner is not None
    assert rt.store.begin_stage("job_1", "notify", 5) is None
    rt.store.abandon_stage("job_1", "notify", owner)
    again = rt.store.begin_stage("job_1", "notify", 5)
    assert again is not None
    assert rt.store.finish_stage("job_1", "notify", again)
    assert rt.store.stage_done("job_1", "notify")
    assert rt.store.begin_stage("job_1", "notify", 5) is None


def test_only_the_owner_of_a_stage_can_renew_finish_or_drop_it(rt: Runtime) -> None:
    owner = rt.store.begin_stage("job_1", "store", 0.2)
    assert owner is not None
    time.sleep(0.3)  # the lease ran out: another worker takes the stage
    other = rt.store.begin_stage("job_1", "store", 5)
    assert other is not None
    assert not rt.store.renew_stage("job_1", "store", owner, 5)
    rt.store.abandon_stage("job_1", "store", owner)  # the late first owner drops nothing
    assert not rt.store.finish_stage("job_1", "store", owner)
    assert rt.store.begin_stage("job_1", "store", 5) is None
    assert rt.store.finish_stage("job_1", "store", other)


def other_worker(rt: Runtime) -> JobStore:
    """A second store on the same Redis, as another worker process has: its own memory."""
    return JobStore(redis.Redis.from_url(rt.settings.redis_url, decode_responses=True),
                    rt.settings.key_prefix, rt.store.timings)


def test_a_record_reads_back_identically_from_its_slim_stored_form(rt: Runtime) -> None:
    job = make_job(rt)
    job.metadata = {"chat": "x", "n": [1, 2.5, None]}
    rt.store.create(job)
    raw = rt.store.redis.get(rt.store.job_key("job_1"))
    assert JobRecord.model_validate_json(raw) == job == rt.store.get("job_1")
    stored = json.loads(raw)
    assert "chat_id" not in stored and "poll_token" not in stored  # null and default fields
    assert len(raw) < len(job.model_dump_json()) / 2


def test_a_write_from_a_stale_memory_keeps_what_another_worker_wrote(rt: Runtime) -> None:
    rt.store.create(make_job(rt))
    assert rt.store.claim("job_1", 1) is not None  # this worker now remembers the record
    other_worker(rt).update("job_1", lambda j: setattr(j, "rate_limited", 7))
    change = rt.store.update("job_1", lambda j: setattr(j, "attempts", j.attempts + 1))
    job = rt.store.get("job_1")
    assert change.applied and job is not None
    assert (job.rate_limited, job.attempts) == (7, 1)


def test_a_job_another_worker_ended_is_not_revived_from_memory(rt: Runtime) -> None:
    rt.store.create(make_job(rt))
    assert rt.store.claim("job_1", 1) is not None
    other_worker(rt).update("job_1", lambda j: setattr(j, "status", JobStatus.CANCELED))
    change = rt.store.update("job_1", lambda j: setattr(j, "status", JobStatus.RUNNING))
    assert not change.applied
    assert change.job is not None and change.job.status is JobStatus.CANCELED
    assert rt.store.get("job_1").status is JobStatus.CANCELED  # type: ignore[union-attr]


def test_a_token_another_worker_advanced_is_claimed_despite_a_stale_memory(rt: Runtime) -> None:
    rt.store.create(make_job(rt))
    assert rt.store.claim("job_1", 1) is not None  # remembers token 2
    elsewhere = other_worker(rt)
    assert elsewhere.claim("job_1", 2) is not None  # the next turn ran on the other worker
    assert rt.store.claim("job_1", 2) is None  # its duplicate is refused…
    claimed = rt.store.claim("job_1", 3)  # …and the current token is taken, not refused
    assert claimed is not None and claimed.poll_token == 4


def test_a_claim_takes_its_provider_token_only_if_it_commits(rt: Runtime) -> None:
    """The claim and the token are one write: a duplicate message spends no token."""
    rt.store.create(make_job(rt))
    bucket = rt.limiter.bucket("kie:status", Limit(rate=0.01, burst=1))
    assert rt.store.claim_turn("job_1", 2, lambda job: bucket) is None  # not the token
    turn = rt.store.claim_turn("job_1", 1, lambda job: bucket)
    assert turn is not None and turn[1] == 0  # the one token in the bucket
    assert rt.store.claim_turn("job_1", 1, lambda job: bucket) is None  # its duplicate
    late = rt.store.claim_turn("job_1", 2, lambda job: bucket)
    assert late is not None and late[1] > 90_000  # empty: about 1/0.01 s to the next one
    assert rt.limiter.take(bucket) > 90  # the same bucket the plain limiter sees
