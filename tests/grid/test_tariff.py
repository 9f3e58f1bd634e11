from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from grid.config import load_site
from grid.tariff import billing_period_start

SITE = load_site(Path(__file__).parents[2] / "examples" / "site.toml")


def in_zone(zone: str):
    return SITE.model_copy(update={"site": SITE.site.model_copy(update={"timezone": zone})})


def test_billing_period_starts_at_local_midnight_on_the_first() -> None:
    berlin = in_zone("Europe/Berlin")
    # 23:30 UTC on 31 May is already 1 June in Berlin: a new month's bill
    assert billing_period_start(berlin, datetime(2026, 5, 31, 23, 30, tzinfo=UTC)) == datetime(
        2026, 5, 31, 22, 0, tzinfo=UTC
    )
    # 21:30 UTC on 31 May is still May in Berlin
    assert billing_period_start(berlin, datetime(2026, 5, 31, 21, 30, tzinfo=UTC)) == datetime(
        2026, 4, 30, 22, 0, tzinfo=UTC
    )
    new_york = in_zone("America/New_York")
    assert billing_period_start(new_york, datetime(2026, 1, 1, 3, 0, tzinfo=UTC)) == datetime(
        2025, 12, 1, 5, 0, tzinfo=UTC
    )
