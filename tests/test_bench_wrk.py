"""The benchmark's merge of wrk windows: the percentile of all their requests together."""

from __future__ import annotations

from videopoll.bench.wrk import WrkResult, merged_percentile


def window(requests: int, points: list[tuple[float, float]]) -> WrkResult:
    return WrkResult(requests=requests, seconds=2.0, p50_ms=0.0, p99_ms=0.0,
                     max_ms=points[-1][1], errors=0, points=tuple(points))


def uniform(requests: int, top_ms: float) -> WrkResult:
    """Latencies spread evenly from 0 to ``top_ms``."""
    return window(requests, [(p, top_ms * p / 100) for p in range(1, 101)])


def test_one_window_merges_to_its_own_percentiles() -> None:
    only = uniform(1000, 100.0)
    assert merged_percentile([only], 99) == 99.0
    assert merged_percentile([only], 50) == 50.0


def test_one_slow_window_moves_the_p99_but_not_to_its_own() -> None:
    quiet = [uniform(1000, 10.0) for _ in range(3)]
    stalled = window(1000, [*[(p, 10.0 * p / 100) for p in range(1, 98)],
                            (98, 60.0), (99, 80.0), (100, 100.0)])
    merged = merged_percentile([*quiet, stalled], 99)
    # 1% of 4,000 is 40 requests: the stalled window's 30 above 10 ms and 10 of the quiet ones
    assert 9.0 < merged <= 10.0
    assert merged < stalled.points[-2][1]  # the worst window's own p99 was 80 ms
