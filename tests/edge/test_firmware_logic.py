"""The firmware's pure logic (run here on CPython) speaks edge/protocol.py exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from edge.firmware import logic
from edge.protocol import Ack, Command, StatePayload, Status, Telemetry, decode, encode

NOW = datetime(2026, 6, 1, 10, tzinfo=UTC)
NOW_S = NOW.timestamp()


def as_bytes(payload: dict) -> bytes:
    return json.dumps(payload).encode()


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_iso_time_matches_datetime(epoch_s: float) -> None:
    text = logic.iso_utc(epoch_s)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert abs(parsed.timestamp() - epoch_s) <= 0.0005 + 1e-6
    assert logic.parse_iso_utc(text) == parsed.timestamp()


def test_parse_accepts_what_pydantic_writes() -> None:
    command = Command(
        id="x", device="b", action="stop", issued_at=NOW, expires_at=NOW + timedelta(seconds=1.5)
    )
    raw = json.loads(encode(command))
    assert logic.parse_iso_utc(raw["expires_at"]) == NOW_S + 1.5


def test_firmware_payloads_validate_against_the_protocol_models() -> None:
    relays = [True, False, True, False]
    values = logic.board_values(relays, [1.0, 2.0, 3.0, 4.0], 230.0)
    telemetry = decode(Telemetry, as_bytes(logic.telemetry("relay-board-1", 7, NOW_S, values)))
    assert telemetry.seq == 7 and telemetry.time == NOW
    assert telemetry.values["ch2_power_kw"] == 0.0  # off: no power whatever the demand
    assert telemetry.values["ch3_current_a"] == round(3000 / 230, 3)
    state = decode(
        StatePayload,
        as_bytes(
            logic.state_payload(
                "relay-board-1", "relay_board", NOW_S, logic.board_state(relays, False)
            )
        ),
    )
    assert state.state == {"relays": relays, "reverted": False}
    assert decode(Status, as_bytes(logic.status("relay-board-1", False))).time is None
    ack = decode(Ack, as_bytes(logic.ack("c", "relay-board-1", "ok", "", {}, NOW_S)))
    assert ack.time == NOW


def command(cid: str, expires_in_s: float = 30.0, **params) -> dict:
    cmd = Command(
        id=cid,
        device="relay-board-1",
        action="set_relay",
        params=params or {"channel": 2, "on": True},
        issued_at=NOW,
        expires_at=NOW + timedelta(seconds=expires_in_s),
    )
    return json.loads(encode(cmd))


def test_command_switches_once_and_a_repeat_gets_the_same_ack() -> None:
    executed = logic.Executed()
    relays, reverted, ack, actuated = logic.handle_relay_command(
        command("c1"), "relay-board-1", [True, False, False, False], True, NOW_S, executed
    )
    assert relays == [True, True, False, False] and actuated and not reverted
    assert decode(Ack, as_bytes(ack)).result == "ok"
    again = logic.handle_relay_command(
        command("c1", on=False, channel=2), "relay-board-1", relays, False, NOW_S + 5, executed
    )
    assert again == (relays, False, ack, False)


def test_bad_commands_are_refused_with_the_reason() -> None:
    executed = logic.Executed()
    relays = [False] * 4
    cases = [
        (command("a", channel=5, on=True), "rejected", "params.channel = 5"),
        (command("b", channel=1, on=1), "rejected", "params.on = 1"),
        (command("c", expires_in_s=-1), "expired", "expired"),
        ({**command("d"), "device": "other"}, "rejected", "for 'other'"),
        ({**command("e"), "v": 2}, "rejected", "version 2"),
        ({**command("f"), "action": "set_power"}, "rejected", "only does set_relay"),
    ]
    for cmd, result, detail in cases:
        after, _, ack, actuated = logic.handle_relay_command(
            cmd, "relay-board-1", relays, False, NOW_S, executed
        )
        assert (ack["result"], actuated, after) == (result, False, relays)
        assert detail in ack["detail"]


def test_revert_timer_and_safe_state() -> None:
    assert not logic.revert_due(100.0, 160.0, 60)
    assert logic.revert_due(100.0, 160.5, 60)
    assert logic.revert([True] * 4, [True, True, False, False]) == [True, True, False, False]
    assert logic.revert([True] * 4, None) == [False] * 4


def test_executed_log_is_bounded() -> None:
    executed = logic.Executed(size=3)
    for i in range(5):
        executed.put(f"c{i}", {"id": f"c{i}"})
    assert executed.get("c0") is None and executed.get("c4") == {"id": "c4"}
    assert len(executed.acks) == 3
