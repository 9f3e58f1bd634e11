"""Readers of the live state get copies that a later gateway write does not change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.state import LiveState

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def test_a_snapshot_keeps_what_it_saw_while_the_gateway_writes() -> None:
    live = LiveState({"board-1": "relay_board"})
    live.set_state("board-1", {"relays": [1, 0]}, T0)
    live.seen("board-1", T0, [])
    before = live.snapshot()["board-1"]
    one = live.device("board-1")
    live.set_state("board-1", {"relays": [0, 0]}, T0 + timedelta(seconds=5))
    live.set_online("board-1", False)
    assert before.state == {"relays": [1, 0]} and before.online
    assert one is not None and one.state == {"relays": [1, 0]} and one.last_seen == T0
    now = live.snapshot()["board-1"]
    assert now.state == {"relays": [0, 0]} and not now.online
    # the state handed in is not the one kept: changing it later changes nothing
    given = {"relays": [1, 1]}
    live.set_state("board-1", given, None)
    given["relays"] = [0, 1]
    assert live.snapshot()["board-1"].state == {"relays": [1, 1]}
