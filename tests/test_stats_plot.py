"""``videopoll stats --plot``: a real PNG of time per model and failures by code, and a clear
exit when matplotlib is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.test_stats import finished
from videopoll.models import ErrorCode
from videopoll.runtime import Runtime

BIN = Path(sys.executable).parent
RED = (0xCF, 0x22, 0x2E)  # the failure bars
BLUE = (0x09, 0x69, 0xDA)  # the mean-time bars


def stats(redis_url: str, *args: str, python: list[str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    env = {"REDIS_URL": redis_url, "PATH": str(BIN)}
    argv = python or [str(BIN / "videopoll")]
    return subprocess.run([*argv, "stats", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_the_plot_draws_times_and_failures(rt: Runtime, tmp_path: Path) -> None:
    for i, seconds in enumerate([60, 90, 300]):
        finished(rt, f"job_v{i}", "veo3", seconds, attempts=3)
    finished(rt, "job_s1", "sora-2", 100, 5)
    finished(rt, "job_f1", "sora-2", 50, 2, ErrorCode.PROVIDER_TIMEOUT)
    finished(rt, "job_f2", "veo3", 40, 1, ErrorCode.MODERATION_REJECTED)
    out = tmp_path / "stats.png"
    done = stats(rt.settings.redis_url, "--plot", str(out))
    assert done.returncode == 0, done.stderr
    assert "veo3" in done.stdout and f"plot written to {out}" in done.stderr
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (1000, 450)
        seen = {colour: n for n, colour in image.convert("RGB").getcolors(1000 * 450)}
    assert seen.get(BLUE, 0) > 1000 and seen.get(RED, 0) > 1000  # both charts have bars
    assert len(seen) > 50  # axes, labels and text, not a blank canvas


def test_without_matplotlib_it_says_so_and_exits_2(rt: Runtime, tmp_path: Path) -> None:
    blocked = ("import sys; sys.modules['matplotlib'] = None; "
               "from videopoll.cli import main; sys.exit(main(sys.argv[1:]))")
    done = stats(rt.settings.redis_url, "--plot", str(tmp_path / "x.png"),
                 python=[sys.executable, "-c", blocked])
    assert done.returncode == 2
    assert "--plot needs matplotlib" in done.stderr and "videopoll[plot]" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x.png").exists()


def test_an_unwritable_path_is_a_clear_error(rt: Runtime, tmp_path: Path) -> None:
    done = stats(rt.settings.redis_url, "--plot", str(tmp_path / "missing" / "x.png"))
    assert done.returncode == 2 and "cannot write" in done.stderr
    assert "Traceback" not in done.stderr
