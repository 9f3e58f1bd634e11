"""Topics and payloads of the field protocol."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.protocol import (
    Ack,
    Command,
    ProtocolError,
    Telemetry,
    TopicParts,
    decode,
    encode,
    heartbeat_topic,
    parse_topic,
    site_filter,
    topic,
    unit_of,
)

T = datetime(2026, 6, 1, 10, tzinfo=UTC)


def test_topics_round_trip_through_the_parser() -> None:
    for kind in ("telemetry", "state", "cmd", "ack", "status"):
        name = topic("depot", "relay-board-1", kind)
        assert name == f"gridpilot/depot/relay-board-1/{kind}"
        assert parse_topic(name) == TopicParts("depot", "relay-board-1", kind)
    assert parse_topic(heartbeat_topic("depot")) == TopicParts("depot", "gateway", "heartbeat")
    assert site_filter("depot", "edge") == "$share/edge/gridpilot/depot/+/+"


@pytest.mark.parametrize(
    "name",
    [
        "gridpilot/depot/dev",
        "other/depot/dev/state",
        "gridpilot/depot/dev/bogus",
        "gridpilot//dev/state",
        "gridpilot/depot/dev/state/extra",
    ],
)
def test_bad_topics_are_refused(name: str) -> None:
    with pytest.raises(ProtocolError):
        parse_topic(name)


def test_topic_refuses_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind 'log'"):
        topic("depot", "dev", "log")


def test_command_and_ack_survive_encoding() -> None:
    command = Command(
        id="c-1",
        device="bess-1",
        action="set_power",
        params={"power_kw": -12.5},
        issued_at=T,
        expires_at=T + timedelta(seconds=30),
        principal="operator",
    )
    assert decode(Command, encode(command)) == command
    assert command.v == 1
    ack = Ack(id="c-1", device="bess-1", result="ok", state={"power_kw": -12.5}, time=T)
    assert decode(Ack, encode(ack)) == ack


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (b"{", "not JSON"),
        (b"3", "want a JSON object"),
        (
            b'{"v": 2, "device": "m", "seq": 0, "time": "2026-06-01T10:00:00Z", "values": {}}',
            "Telemetry.v",
        ),
        (
            b'{"device": "m", "seq": -1, "time": "2026-06-01T10:00:00Z", "values": {}}',
            "Telemetry.seq",
        ),
        (
            b'{"device": "m", "seq": 0, "time": "2026-06-01T10:00:00", "values": {}}',
            "Telemetry.time",
        ),
        (
            b'{"device": "m", "seq": 0, "time": "2026-06-01T10:00:00Z", "values": {"Power": 1}}',
            "Telemetry.values.Power",
        ),
        (
            b'{"device": "m", "seq": 0, "time": "2026-06-01T10:00:00Z", "values": {"p_kw": 1e999}}',
            "Telemetry.values",
        ),
    ],
)
def test_decode_errors_name_the_field(payload: bytes, where: str) -> None:
    with pytest.raises(ProtocolError, match=where.replace(".", r"\.")):
        decode(Telemetry, payload)


def test_units_follow_the_reading_name() -> None:
    assert [
        unit_of(q)
        for q in (
            "power_kw",
            "ch1_current_a",
            "supply_voltage_v",
            "frequency_hz",
            "temperature_c",
            "soc_fraction",
            "import_price_eur_per_kwh",
            "import_kwh",
            "relay_on",
        )
    ] == ["kW", "A", "V", "Hz", "C", "", "EUR/kWh", "kWh", ""]
