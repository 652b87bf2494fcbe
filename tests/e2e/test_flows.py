"""Whole-stack flows: HTTP in, real worker and beat, fake provider, file storage out."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.e2e.stack import Stack
from videopoll.fake_provider import FakeProvider

SAMPLE = Path(__file__).resolve().parents[2] / "videopoll" / "fake_provider" / "sample.mp4"


def tid(scenario: str) -> str:
    return f"{scenario}_{uuid.uuid4().hex[:8]}"


def n8n(task_id: str, model: str = "veo3", **extra: object) -> dict[str, object]:
    return {"sessionId": "user_123", "taskId": task_id, "model": model, "attempt": 1, **extra}


def stored_bytes(view: dict[str, object]) -> bytes:
    """What a person opening ``outputUrl`` gets: a link to our API, never a server path."""
    url = str(view["outputUrl"])
    assert url.startswith("http://") and "/videos/videos/" in url, url
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "video/mp4"
    return resp.content


def notified(stack: Stack, job_id: str) -> list[str]:
    return [line for line in stack.notifications() if job_id in line]


@pytest.mark.parametrize("model", ["veo3", "veo3_fast", "sora-2"])
def test_n8n_happy_path_delivers_the_video_once(
    stack: Stack, fake: FakeProvider, model: str
) -> None:
    task = tid(f"{'veo' if model.startswith('veo') else 'market'}_ok2")
    resp = stack.post("/webhook/poll-video", n8n(task, model, metadata={"run": 7}))
    assert resp.status_code == 202
    assert resp.json()["status"] == "queued"
    assert resp.json()["message"] == "Polling started"
    job_id = resp.json()["jobId"]

    view = stack.wait_terminal(job_id)

    assert view["status"] == "succeeded", view
    assert view["message"] == "Your video is ready."
    assert view["attempts"] == 3  # two "generating" answers, then success
    assert view["metadata"] == {"run": 7}
    assert stored_bytes(view) == SAMPLE.read_bytes()
    assert fake.stats()["polls"][task] == 3
    stack.wait_until(lambda: len(notified(stack, job_id)) == 1, 10, "one notification")
    assert '"status": "succeeded"' in notified(stack, job_id)[0]


def test_generate_job_submits_then_polls_then_delivers(stack: Stack, fake: FakeProvider) -> None:
    body = {"sessionId": "s1", "model": "sora-2", "prompt": "a fox in snow (ok1)",
            "aspectRatio": "9:16"}
    resp = stack.post("/jobs", body)
    assert resp.status_code == 202, resp.text
    view = stack.wait_terminal(resp.json()["jobId"])
    assert view["status"] == "succeeded", view
    assert view["providerTaskId"].startswith("market_ok1_")
    assert stored_bytes(view) == SAMPLE.read_bytes()


@pytest.mark.parametrize(
    ("scenario", "model", "code", "message"),
    [
        ("veo_moderation1", "veo3", "moderation_rejected",
         "This request could not be processed. Try changing the prompt or assets."),
        ("market_moderation1", "sora-2", "moderation_rejected",
         "This request could not be processed. Try changing the prompt or assets."),
        ("veo_upstream1", "veo3", "unknown_provider_error",
         "The provider could not generate this video."),
        # Market failCode "500" is the provider's own timeout (providers.md §10.2)
        ("market_upstream1", "sora-2", "provider_timeout",
         "The provider did not return a result in time."),
        ("veo_auth", "veo3", "provider_auth_failed",
         "The video service is misconfigured. Please contact support."),
    ],
)
def test_provider_failures_end_with_a_code_and_a_user_message(
    stack: Stack, scenario: str, model: str, code: str, message: str
) -> None:
    job_id = stack.post("/webhook/poll-video", n8n(tid(scenario), model)).json()["jobId"]
    view = stack.wait_terminal(job_id)
    assert (view["status"], view["errorCode"], view["message"]) == ("failed", code, message)
    assert view["outputUrl"] is None
    stack.wait_until(lambda: len(notified(stack, job_id)) == 1, 10, "failure notification")
    assert code in notified(stack, job_id)[0]


def test_rate_limit_storm_honours_retry_after_then_succeeds(
    stack: Stack, fake: FakeProvider
) -> None:
    task = tid("veo_ratelimit3")
    started = time.monotonic()
    job_id = stack.post("/webhook/poll-video", n8n(task)).json()["jobId"]
    view = stack.wait_terminal(job_id)
    assert view["status"] == "succeeded"
    # three 429s each said "Retry-After: 1"; polling at the 0.2 s interval would be done sooner
    assert time.monotonic() - started >= 3.0
    assert fake.stats()["polls"][task] == 4
    assert view["attempts"] == 1  # 429s are not counted against the attempt budget


def test_flaky_5xx_html_and_garbage_then_success(stack: Stack, fake: FakeProvider) -> None:
    task = tid("veo_flaky3")
    job_id = stack.post("/webhook/poll-video", n8n(task)).json()["jobId"]
    view = stack.wait_terminal(job_id)
    assert view["status"] == "succeeded", view
    assert view["attempts"] == 4
    assert fake.stats()["polls"][task] == 4


def test_success_without_url_is_not_ready_yet(stack: Stack) -> None:
    job_id = stack.post("/webhook/poll-video", n8n(tid("veo_nourl2"))).json()["jobId"]
    view = stack.wait_terminal(job_id)
    assert view["status"] == "succeeded", view


def test_cancel_mid_poll_stops_the_poller(stack: Stack, fake: FakeProvider) -> None:
    task = tid("veo_never")
    job_id = stack.post("/webhook/poll-video", n8n(task)).json()["jobId"]
    stack.wait_until(lambda: stack.job(job_id)["attempts"] >= 2, 20, "two polls")

    resp = stack.post(f"/jobs/{job_id}/cancel", {})
    assert resp.status_code == 200
    assert resp.json()["status"] == "canceled"

    time.sleep(1.0)  # any poll already in flight lands
    polls = fake.stats()["polls"][task]
    time.sleep(1.5)  # seven poll intervals: a live poller would have polled again
    assert fake.stats()["polls"][task] == polls
    assert stack.job(job_id)["status"] == "canceled"
    assert stack.post(f"/jobs/{job_id}/cancel", {}).status_code == 409


def test_duplicate_submission_gives_one_job_and_one_poller(
    stack: Stack, fake: FakeProvider
) -> None:
    task = tid("veo_ok4")
    answers: list[tuple[int, str]] = []

    def submit() -> None:
        resp = stack.post("/webhook/poll-video", n8n(task))
        answers.append((resp.status_code, resp.json()["jobId"]))

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len({job_id for _, job_id in answers}) == 1
    assert sorted(code for code, _ in answers) == [200] * 5 + [202]
    job_id = answers[0][1]
    view = stack.wait_terminal(job_id)
    assert view["status"] == "succeeded"
    assert fake.stats()["polls"][task] == view["attempts"] == 5
    # n8n re-posting with attempt 2 resumes the same job rather than starting another
    again = stack.post("/webhook/poll-video", {**n8n(task), "attempt": 2})
    assert (again.status_code, again.json()["jobId"]) == (200, job_id)


def test_idempotency_key_header_dedupes_generate(stack: Stack) -> None:
    body = {"sessionId": "s2", "model": "veo3_fast", "prompt": "waves (ok1)"}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = stack.post("/jobs", body, headers=headers)
    second = stack.post("/jobs", body, headers=headers)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["jobId"] == second.json()["jobId"]


def test_never_completes_goes_delayed_then_times_out(
    make_stack: Callable[..., Stack], fake: FakeProvider
) -> None:
    slow = make_stack(MAX_ATTEMPTS="3", JOB_DEADLINE_SECONDS="5", DELAYED_INTERVAL_SECONDS="0.5")
    task = tid("veo_never")
    job_id = slow.post("/webhook/poll-video", n8n(task)).json()["jobId"]

    delayed = slow.wait_status(job_id, "delayed", 20)
    assert delayed["message"] == "This is taking longer than usual. We are still checking."
    polls_when_delayed = fake.stats()["polls"][task]
    view = slow.wait_terminal(job_id, 30)

    assert (view["status"], view["errorCode"]) == ("failed", "provider_timeout")
    assert view["message"] == "The provider did not return a result in time."
    assert fake.stats()["polls"][task] > polls_when_delayed  # the slow poller kept checking
    # the user hears twice: once when it goes delayed, once with the outcome
    slow.wait_until(lambda: len(notified(slow, job_id)) == 2, 10, "timeout notification")
    messages = [json.loads(line.removeprefix("NOTIFY "))["message"]
                for line in notified(slow, job_id)]
    assert messages == ["This is taking longer than usual. We are still checking.",
                        "The provider did not return a result in time."]
    time.sleep(1.5)  # later sweeps (outbox, delayed cadence) send nothing more
    assert len(notified(slow, job_id)) == 2
