"""Confirmation tokens and plan validity run on the wall clock, whatever the site's
simulated speed; a token is its principal's alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from grid.clock import SimClock
from grid.errors import PolicyRefusal
from guardrails.confirmations import Confirmations

ARGS = {"asset": "battery", "power_kw": 2.0, "reason": "check"}


def test_a_token_outlives_a_fast_site_clock() -> None:
    """At 3600x an hour of site time passes each wall second; the token does not care."""
    site_clock = SimClock(speed=3600)
    tokens = Confirmations(ttl_s=120)
    token, expires = tokens.issue("operator", "set_setpoint", ARGS)
    assert expires - datetime.now(UTC) > timedelta(seconds=100)
    assert site_clock.now().year == 2026  # the site clock is elsewhere entirely
    tokens.redeem(token, "operator", "set_setpoint", ARGS)


def test_a_token_expires_on_the_wall_clock() -> None:
    wall = SimClock(start=datetime(2026, 1, 1, tzinfo=UTC))
    tokens = Confirmations(ttl_s=120, wall=wall)
    token, _ = tokens.issue("operator", "set_setpoint", ARGS)
    wall.advance(121)
    with pytest.raises(PolicyRefusal, match="expired"):
        tokens.redeem(token, "operator", "set_setpoint", ARGS)


def test_another_principal_cannot_redeem_nor_burn_a_token() -> None:
    tokens = Confirmations()
    token, _ = tokens.issue("operator", "set_setpoint", ARGS)
    with pytest.raises(PolicyRefusal, match="another principal"):
        tokens.redeem(token, "admin", "set_setpoint", ARGS)
    with pytest.raises(PolicyRefusal, match="other arguments"):
        tokens.redeem(token, "operator", "set_setpoint", {**ARGS, "power_kw": 9.0})
    tokens.redeem(token, "operator", "set_setpoint", ARGS)  # still good for its owner
    with pytest.raises(PolicyRefusal, match="already used"):
        tokens.redeem(token, "operator", "set_setpoint", ARGS)


def test_a_plan_stays_valid_for_its_wall_clock_ttl_however_fast_the_site_runs() -> None:
    from guardrails.plans import PlanBook
    from optimization.plan import Plan

    wall = SimClock(start=datetime(2026, 1, 1, tzinfo=UTC))
    book = PlanBook(ttl_s=900, wall=wall)
    plan = Plan.model_construct(id="p1", steps=[])
    stored = book.add(plan)
    assert stored.expires_at == datetime(2026, 1, 1, 0, 15, tzinfo=UTC)
    wall.advance(899)
    assert book.for_dispatch("p1").plan.id == "p1"
    wall.advance(2)
    with pytest.raises(PolicyRefusal, match="plan_expired"):
        book.for_dispatch("p1")
