"""The numbers on the dashboard move by exactly what happened to the jobs, and /metrics serves
them: through the real poll, delivery and sweep functions against the fake provider."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from tests.conftest import with_kie
from videopoll import delivery, metrics, metrics_files, notify
from videopoll.api import create_app
from videopoll.fake_provider import FakeProvider
from videopoll.notifiers import ConsoleNotifier
from videopoll.polling import advance
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings
from videopoll.sweeper import sweep

VEO = {"family": "kie_veo", "model": "veo3"}


def read(watched: dict[str, tuple[str, dict[str, str]]]) -> dict[str, float]:
    return {key: REGISTRY.get_sample_value(name, labels) or 0.0
            for key, (name, labels) in watched.items()}


def moved(watched: dict[str, tuple[str, dict[str, str]]], before: dict[str, float]
          ) -> dict[str, float]:
    after = read(watched)
    return {key: after[key] - before[key] for key in watched}


@pytest.fixture
def live(settings: Settings, fake: FakeProvider) -> Settings:
    return with_kie(settings, base_url=fake.base_url)


@pytest.fixture
def worker(live: Settings) -> Runtime:
    rt = build_runtime(live)
    rt.notifiers = [ConsoleNotifier(io.StringIO())]
    return rt


def submit(client: FlaskClient, scenario: str) -> tuple[str, dict[str, str]]:
    body = {"sessionId": "s", "taskId": f"{scenario}_{uuid.uuid4().hex[:8]}", "model": "veo3"}
    resp = client.post("/webhook/poll-video", json=body)
    assert resp.status_code == 202, resp.text
    return resp.get_json()["jobId"], body


def drive(rt: Runtime, job_id: str, token: int = 1) -> list[str]:
    """The poll turns the task would run, minus the countdowns."""
    actions = []
    for _ in range(20):
        step = advance(rt, job_id, token)
        actions.append(step.action)
        if step.action != "poll":
            break
        token = step.token
    return actions


def deliver(rt: Runtime, job_id: str) -> None:
    delivery.store_output(rt, job_id)
    notify.notify_user(rt, job_id)
    delivery.record_result(rt, job_id)


def test_a_delivered_job_moves_each_counter_by_what_happened(live: Settings, worker: Runtime
                                                             ) -> None:
    watched = {
        "submitted": ("videopoll_jobs_submitted_total", {**VEO, "kind": "poll", "created": "true"}),
        "repeated": ("videopoll_jobs_submitted_total", {**VEO, "kind": "poll", "created": "false"}),
        "running": ("videopoll_polls_total", {"family": "kie_veo", "outcome": "running"}),
        "done": ("videopoll_polls_total", {"family": "kie_veo", "outcome": "succeeded"}),
        "timed": ("videopoll_poll_seconds_count", {"family": "kie_veo"}),
        "finished": ("videopoll_jobs_finished_total",
                     {**VEO, "status": "succeeded", "error_code": "none"}),
        "generation": ("videopoll_generation_seconds_count", VEO),
        "attempts": ("videopoll_job_attempts_sum", {**VEO, "status": "succeeded"}),
        "stored": ("videopoll_delivery_stage_seconds_count",
                   {"stage": "store", "outcome": "stored"}),
        "store skipped": ("videopoll_delivery_stage_seconds_count",
                          {"stage": "store", "outcome": "skipped"}),
        "notify runs": ("videopoll_delivery_stage_seconds_count",
                        {"stage": "notify", "outcome": "done"}),
        "sent": ("videopoll_notifications_total",
                 {"event": "notify", "channel": "console", "status": "sent"}),
    }
    before = read(watched)
    with create_app(live).test_client() as client:
        job_id, body = submit(client, "veo_ok2")
        assert client.post("/webhook/poll-video", json=body).status_code == 200  # n8n re-posts

    assert drive(worker, job_id) == ["poll", "poll", "deliver"]
    deliver(worker, job_id)
    deliver(worker, job_id)  # a redelivered chain: runs again, sends and records nothing new

    assert moved(watched, before) == {
        "submitted": 1, "repeated": 1, "running": 2, "done": 1, "timed": 3, "finished": 1,
        "generation": 1, "attempts": 3, "stored": 1, "store skipped": 1, "notify runs": 2,
        "sent": 1}


def test_a_failed_job_counts_its_code_and_no_generation_time(live: Settings, worker: Runtime
                                                             ) -> None:
    failed = {**VEO, "status": "failed", "error_code": "moderation_rejected"}
    watched = {
        "finished": ("videopoll_jobs_finished_total", failed),
        "generation": ("videopoll_generation_seconds_count", VEO),
        "attempts": ("videopoll_job_attempts_count", {**VEO, "status": "failed"}),
        "polls": ("videopoll_poll_seconds_count", {"family": "kie_veo"}),
    }
    before = read(watched)
    with create_app(live).test_client() as client:
        job_id, _ = submit(client, "veo_moderation0")
    assert drive(worker, job_id) == ["finish"]
    deliver(worker, job_id)  # the failure chain: tell the user, record the outcome
    assert moved(watched, before) == {"finished": 1, "generation": 0, "attempts": 1, "polls": 1}


def test_rate_limits_count_by_who_said_wait(live: Settings, worker: Runtime) -> None:
    local = ("videopoll_rate_limited_total",
             {"family": "kie_veo", "operation": "status", "source": "local"})
    provider = ("videopoll_rate_limited_total",
                {"family": "kie_veo", "operation": "status", "source": "provider"})
    watched = {"local": local, "provider": provider,
               "429 polls": ("videopoll_polls_total",
                             {"family": "kie_veo", "outcome": "rate_limited"})}
    tight = build_runtime(live.model_copy(update={"rate_limit_per_second": 0.5,
                                                  "rate_limit_burst": 1}))
    before = read(watched)
    with create_app(live).test_client() as client:
        throttled, _ = submit(client, "veo_ratelimit1")
        refused, _ = submit(client, "veo_never")

    assert advance(tight, throttled, 1).action == "poll"  # the provider answers 429
    assert advance(tight, refused, 1).action == "poll"  # no token left: no request at all
    assert moved(watched, before) == {"local": 1, "provider": 1, "429 polls": 1}


def test_a_lost_poll_recovered_by_the_sweeper_is_counted(live: Settings, worker: Runtime
                                                         ) -> None:
    watched = {"lost": ("videopoll_sweeper_recoveries_total",
                        {"action": "poll", "reason": "poll_overdue"})}
    before = read(watched)
    with create_app(live).test_client() as client:
        submit(client, "veo_never")  # its first poll message is never consumed here
    later = time.time() + live.sweep_grace_seconds + 1
    assert [step.action for _, step in sweep(worker, later)] == ["poll"]
    assert list(sweep(worker, later)) == []  # taken once: the second sweep finds nothing due
    assert moved(watched, before) == {"lost": 1}


def test_a_failing_metric_never_breaks_a_poll(
    live: Settings, worker: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> metrics._Metrics:
        raise RuntimeError("registry unavailable")

    monkeypatch.setattr(metrics, "_metrics", broken)
    with create_app(live).test_client() as client:
        job_id, _ = submit(client, "veo_ok1")
    assert drive(worker, job_id) == ["poll", "deliver"]
    deliver(worker, job_id)
    job = worker.store.get(job_id)
    assert job is not None and job.status.value == "succeeded"


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: FlaskClient, **headers: str) -> Samples:
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def at(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_metrics_answers_prometheus_text_with_jobs_in_flight_counted_now(
    live: Settings, worker: Runtime
) -> None:
    with create_app(live).test_client() as client:
        submit(client, "veo_never")
        job_id, _ = submit(client, "veo_moderation0")
        assert drive(worker, job_id) == ["finish"]  # ended; its notify/record chain is owed
        samples = scrape(client)
        openmetrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})

    assert at(samples, "videopoll_jobs_in_flight", state="scheduled") == 1
    assert at(samples, "videopoll_jobs_in_flight", state="finishing") == 1
    assert at(samples, "videopoll_jobs_in_flight", state="overdue") == 0
    assert at(samples, "videopoll_store_up") == 1
    submitted = at(samples, "videopoll_jobs_submitted_total", **VEO, kind="poll", created="true")
    assert submitted is not None and submitted >= 2  # this process has counted other tests' too
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


def test_metrics_still_answers_when_the_store_is_down(settings: Settings) -> None:
    down = build_runtime(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    with create_app(settings, runtime=down).test_client() as client:
        samples = scrape(client)
    assert at(samples, "videopoll_store_up") == 0
    assert not [key for key in samples if key[0] == "videopoll_jobs_in_flight"]


def test_metrics_needs_the_bearer_token_like_the_rest(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"api_token": SecretStr("s3cret")}))
    with app.test_client() as client:
        assert client.get("/metrics").status_code == 401
        assert at(scrape(client, Authorization="Bearer s3cret"), "videopoll_store_up") == 1


RECORD = """
import sys
from videopoll import metrics
for _ in range(int(sys.argv[1])):
    metrics.rate_limited("kie_veo", "submit", "provider")
"""


def test_multiprocess_mode_adds_up_every_process(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_99999.db").write_bytes(b"left by an earlier run")
    metrics_files.prepare_multiproc_dir(str(folder))  # what gunicorn's on_starting does
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "PATH": "/usr/bin:/bin"}
    workers = [subprocess.run([sys.executable, "-c", RECORD, str(n)], env=env, check=True,
                              cwd=Path(__file__).parents[1], timeout=60) for n in (2, 3)]
    assert len(list(folder.glob("counter_*.db"))) == len(workers)

    metrics.rate_limited("kie_veo", "submit", "provider")  # this process is not one of them
    multi = settings.model_copy(update={"prometheus_multiproc_dir": str(folder)})
    labels = {"family": "kie_veo", "operation": "submit", "source": "provider"}
    with create_app(multi).test_client() as client:
        # both processes, and not this test's own registry
        assert at(scrape(client), "videopoll_rate_limited_total", **labels) == 5
        for pid_file in folder.glob("counter_*.db"):  # what gunicorn's child_exit does
            metrics_files.process_exited(int(pid_file.stem.split("_")[1]), str(folder))
        # a worker that exits keeps its counts in the sum
        assert at(scrape(client), "videopoll_rate_limited_total", **labels) == 5


DASHBOARD = Path(__file__).parents[1] / "examples" / "grafana" / "videopoll.json"
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                   "gauge": ("",)}


def test_the_dashboard_charts_every_metric_and_only_real_ones(worker: Runtime) -> None:
    m = metrics._metrics()
    recorded = [x for v in vars(m).values() for x in (v.values() if isinstance(v, dict) else [v])]
    families = [f for metric in recorded for f in metric.describe()]
    families += list(metrics.StoreCollector(worker.store).collect())
    exported = {f.name + suffix for f in families for suffix in SAMPLE_SUFFIXES[f.type]}

    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    charted = {name for expr in exprs for name in re.findall(r"videopoll_\w+", expr)}
    assert charted <= exported, charted - exported
    uncharted = {f.name for f in families
                 if not charted & {f.name + suffix for suffix in SAMPLE_SUFFIXES[f.type]}}
    assert not uncharted, "no panel shows these"
