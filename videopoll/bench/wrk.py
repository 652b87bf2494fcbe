"""Load from wrk (a real load generator in its own process), posting a fresh job per request.

Each request carries a task id of its own (run, thread, counter), so every answer is a real
``202`` job creation and never an idempotent ``200`` lookup. ``done`` prints the summary as
one JSON line that ``run`` parses. With ``total``, each thread stops after its share of
answers and stops sending; wrk itself runs to its duration, so ``burst`` interrupts it as
soon as the jobs are stored (a burst of that many, give or take the requests in flight).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CONNECTIONS = 16
THREADS = 2

SCRIPT = r"""
local run, quota, counter, threads = "%(run)s", %(quota)d, 0, {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  n, answered = 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  n = n + 1
  local body = string.format(
    '{"sessionId":"bench","taskId":"veo_%(scenario)s_%%s_%%d_%%d","model":"veo3"}', run, tid, n)
  return wrk.format(nil, "/webhook/poll-video", nil, body)
end
function response(status, headers, body)
  answered = answered + 1
  if quota > 0 and answered >= quota then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local points = {}
  for _, p in ipairs(POINTS) do
    table.insert(points, string.format("[%%g,%%d]", p, latency:percentile(p)))
  end
  io.write(string.format(
    '\nWRKJSON {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,' ..
    '"max_us":%%d,"errors":%%d,"points":[%%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.status + summary.errors.timeout, table.concat(points, ",")))
end
POINTS = {}
for p = 1, 99 do table.insert(POINTS, p) end
for _, p in ipairs({99.2, 99.4, 99.6, 99.8, 99.9, 100}) do table.insert(POINTS, p) end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    # (percent, ms): the latency distribution as wrk saw it, to merge windows by
    points: tuple[tuple[float, float], ...] = ()

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def merged_percentile(runs: list[WrkResult], percent: float) -> float:
    """The ``percent`` latency of every request of ``runs`` together, in ms.

    Each window's distribution is known at wrk's percentile points; between two points its
    share of requests above a latency is interpolated. The answer is the lowest latency that
    at most ``100 - percent`` % of all requests exceed (the worst window's p99 was too high
    a figure: four short windows give four chances to catch the machine's one stall).
    """
    total = sum(r.requests for r in runs)
    candidates = sorted({ms for r in runs for _, ms in r.points})
    for latency in candidates:
        above = sum(r.requests * _share_above(r.points, latency) for r in runs)
        if above <= total * (100 - percent) / 100 + 1e-6:  # float rounding of the shares
            return latency
    return max(r.max_ms for r in runs)


def _share_above(points: tuple[tuple[float, float], ...], latency: float) -> float:
    """The share of one window's requests slower than ``latency``: between the two points
    around it, interpolated; ``points`` rise from (0, 0) to (100, the window's max)."""
    last_p, last_v = 0.0, 0.0
    for p, v in points:
        if v > latency:
            between = (latency - last_v) / (v - last_v)  # v > latency >= last_v
            return 1 - (last_p + (p - last_p) * between) / 100
        last_p, last_v = p, v
    return 0.0


def binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed (make bench installs it)")
    return found


def run(url: str, seconds: float, workdir: Path, total: int = 0,
        scenario: str = "never", stop_when: Callable[[], bool] | None = None) -> WrkResult:
    """POST fresh jobs to ``url`` for ``seconds``, or until ``total`` answers and
    ``stop_when()`` says the burst has landed."""
    script = workdir / f"wrk-{uuid.uuid4().hex[:8]}.lua"
    script.write_text(SCRIPT % {"run": uuid.uuid4().hex[:10], "quota": -(-total // THREADS),
                                "scenario": scenario})
    proc = subprocess.Popen(
        [binary(), "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds:.0f}s",
         "--timeout", "10s", "-s", str(script), url],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    began = time.monotonic()
    if stop_when is not None:
        while proc.poll() is None and time.monotonic() - began < seconds:
            if stop_when():
                proc.send_signal(signal.SIGINT)  # wrk stops and reports what it did
                break
            time.sleep(0.05)
    out, _ = proc.communicate(timeout=seconds + 60)
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    return WrkResult(requests=data["requests"], seconds=data["duration_us"] / 1e6,
                     p50_ms=data["p50_us"] / 1e3, p99_ms=data["p99_us"] / 1e3,
                     max_ms=data["max_us"] / 1e3, errors=data["errors"],
                     points=tuple((p, us / 1e3) for p, us in data.get("points", [])))
