"""The status page as a person sees it: headless Chromium opens the signed ``viewUrl`` (no
bearer header, as a browser cannot send one) from a real gunicorn, and we read the pixels
of its screenshot and the DOM it built."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from tests.e2e.stack import Stack

TOKEN = "e2e-view-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SUCCEEDED_GREEN = (0x1A, 0x7F, 0x37)  # .s-succeeded in job_view.html
FAILED_RED = (0xCF, 0x22, 0x2E)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (`make browser` installs it; "
    "it could not be installed on this machine)")


@pytest.fixture(scope="module")
def guarded(make_stack: Callable[..., Stack]) -> Stack:
    """A stack whose API wants a bearer token, polling slowly enough to catch a job running.

    100 attempts: a "never" job stays ``running`` for 100 s, however long a loaded machine
    takes to start Chromium (at 15 it went ``delayed`` first, in a parallel suite)."""
    return make_stack(API_TOKEN=TOKEN, POLL_INTERVAL_SECONDS="1", MAX_ATTEMPTS="100")


def job(stack: Stack, job_id: str) -> dict[str, Any]:
    view: dict[str, Any] = requests.get(f"{stack.api}/jobs/{job_id}", headers=BEARER,
                                        timeout=10).json()
    return view


def submit(stack: Stack, task_id: str, model: str = "veo3") -> str:
    resp = stack.post("/webhook/poll-video", {"sessionId": "viewer", "taskId": task_id,
                                              "model": model}, headers=BEARER)
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["jobId"]
    return job_id


def chromium(profile: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run on loopback only: no sync, updates or background fetches."""
    assert CHROMIUM is not None
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--mute-audio", f"--user-data-dir={profile}",
            "--window-size=800,600", "--virtual-time-budget=4000", *args, url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)


def colours(png: Path, box: tuple[int, int, int, int] | None = None
            ) -> Counter[tuple[int, int, int]]:
    """How many pixels of each colour the screenshot (or the ``box`` of it) holds."""
    with Image.open(png) as image:
        rgb = image.convert("RGB").crop(box) if box else image.convert("RGB")
        return Counter({colour: n for n, colour in rgb.getcolors(rgb.width * rgb.height)})


def saturated(seen: Counter[tuple[int, int, int]]) -> int:
    """Pixels of a strong colour: a decoded frame of the test card, never black, white, grey
    or the player's controls."""
    return sum(n for (r, g, b), n in seen.items() if max(r, g, b) - min(r, g, b) > 150)


def test_a_succeeded_job_page_shows_the_green_badge_and_plays_the_video(
    guarded: Stack, tmp_path: Path
) -> None:
    job_id = submit(guarded, "veo_ok1_view")
    guarded.wait_until(lambda: job(guarded, job_id)["status"] == "succeeded", 60, "succeeded")
    view = job(guarded, job_id)
    assert requests.get(view["viewUrl"], timeout=10).status_code == 200  # no bearer needed
    shot = tmp_path / "succeeded.png"
    run = chromium(tmp_path / "profile", view["viewUrl"], f"--screenshot={shot}")
    assert shot.exists(), run.stderr[-2000:]
    seen = colours(shot)
    assert seen[SUCCEEDED_GREEN] > 2000, seen.most_common(8)  # the badge, filled
    assert seen[FAILED_RED] == 0
    # the <video> box is black until a frame is decoded; the fake's clip is a colour test card
    # (the badge sits above this box)
    frame = saturated(colours(shot, (60, 250, 740, 590)))
    assert frame > 20_000, f"the video element shows no frame ({frame} coloured pixels)"

    dom = chromium(tmp_path / "profile", view["viewUrl"], "--dump-dom").stdout
    assert f'src="{view["outputUrl"]}"' in dom.replace("&amp;", "&")
    assert view["outputUrl"].startswith(f"{guarded.api}/videos/")


def test_a_running_job_page_shows_its_checks_and_progress(guarded: Stack, tmp_path: Path) -> None:
    job_id = submit(guarded, "sora_never_view", model="sora-2")
    guarded.wait_until(lambda: job(guarded, job_id)["attempts"] >= 2, 30, "two polls")
    view = job(guarded, job_id)
    dom = chromium(tmp_path / "profile", view["viewUrl"], "--dump-dom").stdout
    assert "Your video is being generated." in dom, dom[-3000:]
    checks = re.search(r"Checks: (\d+) / 100", dom)
    assert checks and int(checks.group(1)) >= 2, dom[-3000:]
    assert re.search(r"Progress: \d+%", dom), dom[-3000:]
    assert "<video" not in dom
    requests.post(f"{guarded.api}/jobs/{job_id}/cancel", headers=BEARER, timeout=10)
