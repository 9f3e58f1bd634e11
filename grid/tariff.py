"""Import and export prices at given times, from the site's tariff."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from grid.config import SiteConfig, TouPeriod, read_price_series


def _tou_price(periods: Sequence[TouPeriod], local: datetime) -> float:
    at = local.time()
    for period in periods:
        if period.covers(at):
            return period.price_eur_per_kwh
    return 0.0  # only reachable for an empty export list: no export payment


@lru_cache(maxsize=8)
def _series(path: Path) -> tuple[list[datetime], list[float], list[float]]:
    rows = read_price_series(path)
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def billing_period_start(site: SiteConfig, now: datetime) -> datetime:
    """Start of the billing period that holds `now`: midnight on the first of the month
    in the site's time zone (bills follow the local calendar, not UTC)."""
    local = now.astimezone(site.site.tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)


def prices_eur_per_kwh(site: SiteConfig, times: Sequence[datetime]) -> list[tuple[float, float]]:
    """(import, export) price for each aware time: the price series where it has a
    row at or before the time, otherwise the time-of-use periods in site-local time."""
    tz = ZoneInfo(site.site.timezone)
    tariff = site.tariff
    series = _series(tariff.price_series) if tariff.price_series else None
    out = []
    for when in times:
        if series is not None:
            index = bisect.bisect_right(series[0], when) - 1
            if index >= 0:
                out.append((series[1][index], series[2][index]))
                continue
        local = when.astimezone(tz)
        out.append(
            (_tou_price(tariff.import_periods, local), _tou_price(tariff.export_periods, local))
        )
    return out
