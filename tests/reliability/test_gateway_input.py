"""Forged and absurd telemetry against a real Mosquitto: each defect reproduced first.

Every case checks three things: the gateway refuses the message under a named
reason, nothing from it reaches the store, and the device's real messages still
get through afterwards."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from edge.protocol import topic
from tests.edge.conftest import NOON, Rig
from tests.reliability.feed import Feed
from tests.services.process import wait_until


@pytest.fixture
def feed(rig: Rig, mosquitto):
    feed = Feed(rig, mosquitto.port)
    rig.clock.advance(120)  # the readings below, stamped NOON + a few s, are in the past
    yield feed
    feed.close()


def grid_power(rig: Rig) -> list[float]:
    rig.gateway.flush()
    return rig.series("grid", "power_kw")


def rejected(rig: Rig, reason: str) -> int:
    return rig.gateway.stats.rejected.get(reason, 0)


@pytest.mark.parametrize("forged", [2**63, 10**30, 1e30])
def test_absurd_sequence_number_is_refused_and_the_device_goes_on(
    rig: Rig, feed: Feed, forged
) -> None:
    feed.telemetry("meter-1", 0, NOON, power_kw=1.0)
    feed.telemetry("meter-1", forged, NOON + timedelta(seconds=1), power_kw=666.0)
    feed.telemetry("meter-1", 1, NOON + timedelta(seconds=2), power_kw=2.0)
    assert rejected(rig, "schema") == 1
    assert grid_power(rig) == [1.0, 2.0]
    assert rig.gateway.stats.missing == 0 and rig.gateway.stats.duplicates == 0


def test_one_forged_sequence_jump_cannot_silence_a_device(rig: Rig, feed: Feed) -> None:
    for seq in range(3):
        feed.telemetry("meter-1", seq, NOON + timedelta(seconds=seq), power_kw=float(seq))
    feed.telemetry("meter-1", 999_999, NOON + timedelta(seconds=3), power_kw=666.0)
    for seq in range(3, 6):
        feed.telemetry("meter-1", seq, NOON + timedelta(seconds=seq + 1), power_kw=float(seq))
    assert grid_power(rig) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert rig.gateway.last_seq("meter-1") == 5
    assert rejected(rig, "seq_out_of_window") == 1
    assert rig.gateway.stats.missing == 0  # no gap of a million messages


def test_a_rebooted_device_resyncs_without_losing_its_first_message(rig: Rig, feed: Feed) -> None:
    for seq in (40, 41):
        feed.telemetry("meter-1", seq, NOON + timedelta(seconds=seq), power_kw=float(seq))
    for seq in (0, 1, 2):  # rebooted: counts from 0 again
        feed.telemetry("meter-1", seq, NOON + timedelta(seconds=60 + seq), power_kw=float(seq))
    assert grid_power(rig) == [40.0, 41.0, 0.0, 1.0, 2.0]
    assert rig.gateway.stats.resyncs == 1 and rig.gateway.last_seq("meter-1") == 2


def test_future_timestamp_is_refused_so_the_stale_check_keeps_working(rig: Rig, feed: Feed) -> None:
    feed.telemetry("meter-1", 0, "2100-01-01T00:00:00Z", power_kw=5.0)
    assert rejected(rig, "clock_skew") == 1
    assert rig.gateway.state.latest("grid", "power_kw") is None
    feed.telemetry("meter-1", 1, NOON - timedelta(seconds=30), power_kw=5.0)
    age = rig.gateway.state.age_s("grid", "power_kw", rig.clock.now())
    assert age == pytest.approx(150.0)


def test_readings_from_1970_are_refused(rig: Rig, feed: Feed) -> None:
    feed.telemetry("meter-1", 0, "1970-01-01T00:00:00Z", power_kw=5.0)
    assert rejected(rig, "too_old") == 1
    assert grid_power(rig) == []


def test_implausible_values_use_the_site_file_limits(rig: Rig, feed: Feed) -> None:
    feed.telemetry("meter-1", 0, NOON, power_kw=1e308)
    feed.telemetry("bess-1", 0, NOON, soc_fraction=1.7)
    assert rejected(rig, "implausible") == 2
    assert grid_power(rig) == [] and rig.series("battery", "soc_fraction") == []


def test_one_message_cannot_explode_the_series_count(rig: Rig, feed: Feed) -> None:
    many = {f"x{i}_kw": 1.0 for i in range(30_000)}  # ~0.5 MB of new names
    feed.telemetry("meter-1", 0, NOON, **many)
    few_new = {f"y{i}_kw": 1.0 for i in range(60)}
    for n in range(5):  # 60 new names a message: the fifth passes the 256-series cap
        feed.telemetry("meter-1", n + 1, NOON + timedelta(seconds=n), **few_new, **{f"z{n}": 1})
        few_new = {f"y{n}_{i}_kw": 1.0 for i in range(60)}
    assert rejected(rig, "too_large") == 1
    assert rejected(rig, "series_limit") == 1
    rig.gateway.flush()
    stored = rig.store.latest(rig.name, "grid")
    assert len(stored) == 4 * 61


def test_deep_json_is_refused_without_a_traceback(
    rig: Rig, feed: Feed, caplog: pytest.LogCaptureFixture
) -> None:
    name = topic(rig.name, "meter-1", "telemetry")
    with caplog.at_level(logging.WARNING):
        feed.raw(name, b"[" * 200_000 + b"]" * 200_000)  # over the size limit
        feed.raw(name, b"[" * 30_000 + b"]" * 30_000)  # under it: too deep to parse
    assert rejected(rig, "too_large") == 1 and rejected(rig, "too_deep") == 1
    assert rig.gateway.stats.internal_errors == 0
    assert not [r for r in caplog.records if r.exc_info]


def test_forged_ack_cannot_overwrite_the_board_state(rig: Rig, feed: Feed) -> None:
    before = rig.gateway.state.device("relay-board-1").state
    forged = {
        "v": 1,
        "id": "never-sent",
        "device": "relay-board-1",
        "result": "ok",
        "state": {"relays": [False, False, False, False]},
        "time": NOON.isoformat(),
    }
    feed.raw(topic(rig.name, "relay-board-1", "ack"), json.dumps(forged).encode())
    assert rejected(rig, "unknown_command") == 1
    assert rig.gateway.state.device("relay-board-1").state == before
    # A real command's ack still lands.
    ack = rig.gateway.send_command(
        rig.command("relay-board-1", "set_relay", "c1", channel=4, on=True), 5
    )
    assert ack.result == "ok"
    assert rig.gateway.stats.acks == 1


def test_internal_errors_are_counted_apart_from_bad_input(rig: Rig, feed: Feed) -> None:
    class Broken:
        kinds = rig.gateway._map.kinds

        def measurements(self, *_args):
            raise RuntimeError("a bug in the gateway")

    rig.gateway._map = Broken()  # type: ignore[assignment]
    feed.telemetry("meter-1", 0, NOON, power_kw=1.0)
    feed.raw(topic(rig.name, "meter-1", "telemetry"), b"not json")
    wait_until(lambda: rig.gateway.stats.internal_errors == 1, 5, "internal error counted")
    assert rig.gateway.stats.malformed == 1
    assert rig.gateway.stats.rejected == {"not_json": 1}
