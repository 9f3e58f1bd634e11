"""Import and export prices at given times, from the site's tariff."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from grid.config import PriceSeries, SiteConfig, TouPeriod, read_price_series


def _tou_price(periods: Sequence[TouPeriod], local: datetime) -> float:
    at = local.time()
    for period in periods:
        if period.covers(at):
            return period.price_eur_per_kwh
    return 0.0  # only reachable for an empty export list: no export payment


@lru_cache(maxsize=8)
def _series(series: PriceSeries, tz: str) -> tuple[list[datetime], list[float], list[float]]:
    rows = read_price_series(series, ZoneInfo(tz))
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def billing_period_start(site: SiteConfig, now: datetime) -> datetime:
    """Start of the demand-charge billing period that holds `now` (`tariff.billing_period`):
    site-local midnight on the first of the month, of the day, or of the N-day period
    counted from `billing_anchor`. Bills follow the local calendar, not UTC."""
    tz = site.site.tz
    local = now.astimezone(tz)
    period = site.tariff.billing_period
    if period == "month":
        day = local.date().replace(day=1)
    elif period == "day":
        day = local.date()
    else:
        anchor = site.tariff.billing_anchor
        day = anchor + timedelta(days=(local.date() - anchor).days // period * period)
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def billing_periods(site: SiteConfig, times: Sequence[datetime]) -> list[datetime]:
    """The start of each time's billing period: where it changes, a new peak begins."""
    return [billing_period_start(site, when) for when in times]


def prices_eur_per_kwh(site: SiteConfig, times: Sequence[datetime]) -> list[tuple[float, float]]:
    """(import, export) price for each aware time: the price series where it has a
    row at or before the time, otherwise the time-of-use periods in site-local time."""
    tz = ZoneInfo(site.site.timezone)
    tariff = site.tariff
    series = _series(tariff.price_series, site.site.timezone) if tariff.price_series else None
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
