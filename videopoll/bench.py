"""``make bench``: what one poll turn and one submission cost, as ratios to floors measured in
the same run on the same machine (so the figures survive a slower or busier box).

- poll turn  vs  one bare HTTP GET of the same record-info from the fake provider
- job create vs  one bare Redis SET of a value of the same size
- memory: peak Python allocation per poll turn (tracemalloc)
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import redis
import requests

from videopoll.fake_provider import start_in_thread
from videopoll.local_redis import local_redis
from videopoll.models import PollVideoRequest
from videopoll.polling import advance
from videopoll.providers import get_model
from videopoll.runtime import build_runtime
from videopoll.settings import Settings
from videopoll.submission import poll_job_record

ROUNDS = 400


def _per_call(fn: Callable[[int], object], rounds: int = ROUNDS) -> float:
    for i in range(20):  # warm up connections and caches
        fn(-i - 1)
    start = time.perf_counter()
    for i in range(rounds):
        fn(i)
    return (time.perf_counter() - start) / rounds


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir, local_redis(Path(workdir)) as base:
        figures = measure(f"{base}/0")
    report(*figures)


def measure(url: str) -> tuple[float, float, float, float, int]:
    """Per-call seconds of (poll turn, bare GET, job create, bare SET) and peak bytes."""
    fake = start_in_thread()
    try:
        settings = Settings(redis_url=url, kie_base_url=fake.base_url, poll_interval_seconds=1,
                            max_attempts=10**6, rate_limit_per_second=10**6,
                            rate_limit_burst=10**6, storage_url=f"file://{tempfile.gettempdir()}")
        rt = build_runtime(settings)
        raw = redis.Redis.from_url(url)
        http = requests.Session()

        def job_for(i: int) -> str:
            req = PollVideoRequest.model_validate(
                {"sessionId": "bench", "taskId": f"veo_never_{i}", "model": "veo3"})
            job = poll_job_record(req, get_model("veo3"), settings, None)
            rt.store.create(job)
            return job.job_id

        sample = poll_job_record(PollVideoRequest.model_validate(
            {"sessionId": "b", "taskId": "x", "model": "veo3"}), get_model("veo3"), settings,
            None).model_dump_json()
        floor_set = _per_call(lambda i: raw.set(f"floor:{i}", sample))
        create = _per_call(job_for)

        record_info = f"{fake.base_url}/api/v1/veo/record-info"
        floor_get = _per_call(
            lambda i: http.get(record_info, params={"taskId": f"veo_never_f{i}"}, timeout=5))
        poll_job = job_for(10**7)
        tokens = {"next": 1}

        def turn(_: int) -> None:
            step = advance(rt, poll_job, tokens["next"])
            tokens["next"] = step.token

        poll = _per_call(turn)
        tracemalloc.start()
        for _ in range(100):
            turn(0)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        fake.stop()
    return poll, floor_get, create, floor_set, peak


def report(poll: float, floor_get: float, create: float, floor_set: float, peak: int) -> None:
    print(f"{'measure':<34}{'per call':>12}{'floor':>12}{'ratio':>8}")
    print(f"{'poll turn vs bare HTTP GET':<34}{poll * 1e3:>10.3f}ms{floor_get * 1e3:>10.3f}ms"
          f"{poll / floor_get:>8.2f}")
    print(f"{'job create vs bare Redis SET':<34}{create * 1e3:>10.3f}ms"
          f"{floor_set * 1e3:>10.3f}ms{create / floor_set:>8.2f}")
    print(f"{'poll overhead beyond the GET':<34}{(poll - floor_get) * 1e3:>10.3f}ms")
    print(f"{'peak memory over 100 poll turns':<34}{peak / 1024:>10.1f}KiB")


if __name__ == "__main__":
    main()
