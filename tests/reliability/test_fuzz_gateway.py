"""Hypothesis against the gateway over a real Mosquitto: whatever arrives, no crash,
no point from a refused message in the store, every refusal counted by reason.

Every message built to be refused carries the reading `fuzz_marker_kw`, which no
accepted message has, so "nothing stored from it" is one query at the end."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.protocol import MAX_SEQ, topic
from tests.edge.conftest import NOON, Rig
from tests.reliability.feed import Feed
from tests.reliability.report import examples, record
from tests.services.process import wait_until

DEVICES = ["meter-1", "bess-1", "pv-inv-1", "relay-board-1", "peaker-1"]
MARKER = "fuzz_marker_kw"
SUBSCRIBED = [["telemetry"], ["state"], ["status"], ["ack"]]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_any = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)


def body(device: str, seq: Any, when: Any, values: dict[str, Any]) -> dict[str, Any]:
    return {"v": 1, "device": device, "seq": seq, "time": when, "values": values}


@st.composite
def refused_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """A message with at least one defect, as a device bug or a forger would send."""
    device = draw(st.sampled_from(DEVICES))
    seq = draw(st.integers(min_value=0, max_value=50))
    when = (NOON + timedelta(seconds=draw(st.integers(0, 100)))).isoformat()
    values: dict[str, Any] = {MARKER: 1.0}
    name = topic("riverside-depot", device, "telemetry")
    defect = draw(
        st.sampled_from(
            [
                "nan",
                "inf",
                "huge",
                "seq",
                "future",
                "past",
                "bad_time",
                "wrong_device",
                "unknown_device",
                "odd_topic",
                "extra_field",
                "not_object",
                "garbage",
                "too_big",
                "too_many",
                "wrong_type",
            ]
        )
    )
    raw: bytes | None = None
    if defect == "nan":
        raw = json.dumps(body(device, seq, when, {MARKER: math.nan})).encode()
    elif defect == "inf":
        raw = json.dumps(body(device, seq, when, {MARKER: -math.inf})).encode()
    elif defect == "huge":
        values[MARKER] = draw(st.sampled_from([1e308, -1e300, 1e6]))
    elif defect == "seq":
        seq = draw(st.sampled_from([2**63, 10**30, 1e30, -1, MAX_SEQ + 1, "7", 1.5, None]))
    elif defect == "future":
        when = (NOON + timedelta(days=draw(st.integers(1, 30_000)))).isoformat()
    elif defect == "past":
        when = draw(st.sampled_from(["1970-01-01T00:00:00Z", "2000-02-29T12:00:00Z"]))
    elif defect == "bad_time":
        when = draw(st.sampled_from(["yesterday", "2026-06-01T10:00:00", "", 12345]))
    elif defect == "wrong_device":
        other = draw(st.sampled_from([d for d in DEVICES if d != device]))
        raw = json.dumps(body(other, seq, when, values)).encode()
    elif defect == "unknown_device":
        name = topic("riverside-depot", "ghost-7", "telemetry")
    elif defect == "odd_topic":
        name = draw(
            st.sampled_from(
                [
                    f"gridpilot/riverside-depot/{device}/telemetry/extra",
                    f"gridpilot/other-site/{device}/telemetry",
                    f"gridpilot/riverside-depot/{device}/teletry",
                    f"gridpilot/riverside-depot/{device}",
                ]
            )
        )
    elif defect == "extra_field":
        raw = json.dumps({**body(device, seq, when, values), "admin": True}).encode()
    elif defect == "not_object":
        raw = json.dumps(draw(json_any.filter(lambda v: not isinstance(v, dict)))).encode()
        raw = raw + f' "{MARKER}"'.encode()
    elif defect == "garbage":
        raw = draw(st.binary(max_size=200)) + MARKER.encode() + b"\xff"
    elif defect == "too_big":
        values.update({f"pad{i}_kw": 1.0 for i in range(4_000)})
        raw = json.dumps(body(device, seq, when, values)).encode() + b" " * 1_000_000
    elif defect == "too_many":
        values.update({f"many{i}_kw": 1.0 for i in range(65)})
    elif defect == "wrong_type":
        values[MARKER] = draw(st.sampled_from(["1.0", [1.0], {"v": 1}, True, None]))
    if raw is None:
        raw = json.dumps(body(device, seq, when, values)).encode()
    return name, raw


@pytest.fixture
def feed(rig: Rig, mosquitto):
    feed = Feed(rig, mosquitto.port)
    rig.clock.advance(600)
    yield feed
    feed.close()


def test_fuzzed_payloads_never_crash_the_gateway_or_reach_the_store(rig: Rig, feed: Feed) -> None:
    sent = {"n": 0}

    @settings(
        max_examples=examples(150),
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(message=refused_messages())
    def send(message: tuple[str, bytes]) -> None:
        name, raw = message
        before = rig.gateway.stats.received
        bad = rig.gateway.stats.malformed
        feed.client.publish(name, raw, qos=1).wait_for_publish(5)
        sent["n"] += 1
        parts = name.split("/")
        if parts[:2] == ["gridpilot", "riverside-depot"] and parts[3:] in SUBSCRIBED:
            # A topic the gateway subscribes to: wait until it has taken the message.
            wait_until(lambda: rig.gateway.stats.received > before, 10, "taken in")
            wait_until(lambda: rig.gateway.stats.malformed > bad, 5, "refused")

    send()
    # Replayed and out-of-order sequence numbers of otherwise good messages.
    for seq in [5, 6, 6, 5, 4, 7, 7, 3, 8]:
        feed.telemetry("meter-1", seq, NOON + timedelta(seconds=seq), power_kw=float(seq))
    stats = rig.gateway.stats
    rig.gateway.flush()
    stored = rig.store.latest(rig.name)
    leaked = [m for m in stored if m.quantity.startswith(("fuzz_marker", "pad", "many"))]
    record("fuzz_gateway", tried=sent["n"] + 9, crashes=stats.internal_errors, leaked=len(leaked))
    assert stats.internal_errors == 0
    assert stats.malformed == sum(stats.rejected.values()) > 0
    assert leaked == []
    assert rig.series("grid", "power_kw") == [5.0, 6.0, 7.0, 8.0]
    assert stats.duplicates == 5  # 6, 5, 4, 7 and 3 again
    # And the gateway still takes a real device's telemetry.
    rig.steps(2)
    assert len(rig.series("grid", "power_kw")) == 6
    assert sent["n"] == examples(150)
