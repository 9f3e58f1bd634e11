from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from grid.clock import RealClock, SimClock

START = datetime(2026, 6, 1, tzinfo=UTC)


def test_manual_clock_stands_still_until_advanced() -> None:
    clock = SimClock(START)
    time.sleep(0.01)
    assert clock.now() == START
    clock.advance(timedelta(minutes=15))
    assert clock.now() == START + timedelta(minutes=15)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_fast_clock_runs_at_its_speed() -> None:
    clock = SimClock(START, speed=3600.0)
    time.sleep(0.05)
    elapsed = (clock.now() - START).total_seconds()
    assert 150 <= elapsed <= 3600  # 0.05 s of wall time at 3600x is about 3 minutes


async def test_sleep_on_fast_clock_takes_simulated_time() -> None:
    clock = SimClock(START, speed=36_000.0)
    before = time.monotonic()
    await clock.sleep(600)  # ten simulated minutes
    wall = time.monotonic() - before
    assert clock.now() >= START + timedelta(minutes=10)
    assert wall < 1.0


async def test_sleeper_on_manual_clock_wakes_only_when_advanced() -> None:
    clock = SimClock(START)
    woke = anyio.Event()

    async def sleeper() -> None:
        await clock.sleep(60)
        woke.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper)
        await anyio.sleep(0.05)
        assert not woke.is_set()
        clock.advance(59)
        await anyio.sleep(0.05)
        assert not woke.is_set()
        clock.advance(1)
        with anyio.fail_after(2):
            await woke.wait()


def test_sync_sleep_from_a_thread_follows_the_clock() -> None:
    clock = SimClock(START)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (clock.sleep_sync(30), done.set()))
    thread.start()
    assert not done.wait(0.05)
    clock.advance(30)
    assert done.wait(2)
    thread.join()


def test_real_clock_is_aware_utc() -> None:
    now = RealClock().now()
    assert now.tzinfo is UTC
    assert abs(now.timestamp() - time.time()) < 1


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SimClock(datetime(2026, 1, 1))
