"""A short run of the load benchmark (bench/bench_load.py): the real `paramadapt run` in
Socket Mode, the simulated engine at a modest steady rate and `/param show` commands in
parallel. Nothing fails, nothing acknowledged is lost or left without an alert, and memory
stays put. No speed is asserted: CI machines are slow and shared."""

from __future__ import annotations

from pathlib import Path

from bench.bench_load import run_load

SECONDS = 25
RATE = 10.0  # engine events per second
RSS_GROWTH_MB = 150  # generous: a leak at this rate would still show within a few runs


async def test_sustained_traffic_loses_nothing_and_keeps_memory_flat(
    database_url: str, tmp_path: Path
) -> None:
    report = await run_load(database_url, tmp_path, minutes=SECONDS / 60, rate=RATE)

    assert report.errors == []
    assert report.blocked_sent > 0 and report.closed_sent > 0
    assert report.blocked_stored == report.blocked_sent
    assert report.closed_stored == report.closed_sent
    assert report.unalerted == 0
    assert report.ack_ms, "no /param show command was acknowledged"
    first, *later = [megabytes for _, megabytes in report.rss_mb]
    assert max(later, default=first) - first < RSS_GROWTH_MB, report.rss_mb
