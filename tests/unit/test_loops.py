"""Background loops stop between steps: a step in progress is finished, not cut."""

import asyncio

from bot.loops import Loops


async def test_stop_lets_the_current_step_finish() -> None:
    loops = Loops()
    steps: list[str] = []

    async def loop() -> None:
        while loops.running:
            steps.append("begin")
            await asyncio.sleep(0.05)  # e.g. a database transaction
            steps.append("end")
            await loops.pause(10)

    loops.spawn(loop(), "test")
    await asyncio.sleep(0.01)
    await loops.stop()
    assert steps == ["begin", "end"]


async def test_pause_returns_early_when_woken() -> None:
    loops = Loops()
    wake = asyncio.Event()
    wake.set()
    async with asyncio.timeout(1):
        await loops.pause(60, wake)


async def test_a_loop_that_overruns_the_grace_period_is_cancelled() -> None:
    loops = Loops()

    async def stuck() -> None:
        await asyncio.sleep(60)

    loops.spawn(stuck(), "stuck")
    async with asyncio.timeout(2):
        await loops.stop(grace=0.05)
