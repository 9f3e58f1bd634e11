"""One contract, two stores: every test runs on SQLite and on a real influxd."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grid.store import Store, open_store
from grid.store.sqlite import SQLiteStore
from grid.telemetry import Event, Measurement, Quality, Severity

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
_db_names = itertools.count()


@pytest.fixture(params=["sqlite", "sqlite-merging", "influx"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    elif request.param == "sqlite-merging":
        # Merges into the series-ordered table every few points, so reads see both tiers.
        opened = SQLiteStore(tmp_path / "store.db", merge_rows=3)
    else:
        influxd = request.getfixturevalue("influxd")
        opened = open_store(influxd.url(f"contract{next(_db_names)}"), spool_dir=tmp_path)
    yield opened
    opened.close()


def m(
    value: float,
    seconds: float,
    asset: str = "pv-roof",
    quantity: str = "power_kw",
    site: str = "depot",
    quality: Quality = Quality.GOOD,
) -> Measurement:
    return Measurement(
        site=site,
        asset=asset,
        quantity=quantity,
        unit="kW",
        value=value,
        time=T0 + timedelta(seconds=seconds),
        quality=quality,
    )


def values(samples) -> list[float]:
    return [s.value for s in samples]


def test_raw_query_returns_points_in_time_order_within_half_open_range(store: Store) -> None:
    store.write([m(3.0, 20), m(1.0, 0), m(2.0, 10), m(4.0, 30)])
    got = store.query("depot", "pv-roof", "power_kw", T0, T0 + timedelta(seconds=30))
    assert values(got) == [1.0, 2.0, 3.0]
    assert [s.time for s in got] == [T0 + timedelta(seconds=s) for s in (0, 10, 20)]


def test_same_series_and_time_overwrites_instead_of_duplicating(store: Store) -> None:
    store.write([m(1.0, 0), m(2.0, 5)])
    store.write([m(9.0, 0)])
    got = store.query("depot", "pv-roof", "power_kw", T0, T0 + timedelta(minutes=1))
    assert values(got) == [9.0, 2.0]


def test_microseconds_survive_the_round_trip(store: Store) -> None:
    store.write([m(1.5, 0.000123), m(2.5, 0.000124)])
    got = store.query("depot", "pv-roof", "power_kw", T0, T0 + timedelta(seconds=1))
    assert [s.time.microsecond for s in got] == [123, 124]


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [
        ("mean", [2.0, 15.0]),
        ("min", [1.0, 10.0]),
        ("max", [3.0, 20.0]),
        ("sum", [6.0, 30.0]),
        ("count", [3.0, 2.0]),
        ("first", [1.0, 10.0]),
        ("last", [3.0, 20.0]),
    ],
)
def test_windowed_aggregates_align_to_the_epoch(store: Store, aggregate, expected) -> None:
    # Windows of 60 s: [12:00, 12:01) holds 1, 2, 3 and [12:02, 12:03) holds 10, 20;
    # the empty window between them is left out.
    store.write([m(1.0, 0), m(2.0, 20), m(3.0, 40), m(10.0, 130), m(20.0, 150)])
    got = store.query(
        "depot",
        "pv-roof",
        "power_kw",
        T0,
        T0 + timedelta(minutes=5),
        window_s=60,
        aggregate=aggregate,
    )
    assert [s.time for s in got] == [T0, T0 + timedelta(minutes=2)]
    assert values(got) == pytest.approx(expected)


def test_latest_gives_newest_value_of_each_series(store: Store) -> None:
    store.write(
        [
            m(1.0, 0),
            m(2.0, 60),
            m(5.0, 30, quantity="voltage_v"),
            m(0.4, 10, asset="battery", quantity="soc_fraction", quality=Quality.SUSPECT),
            m(7.0, 999, site="other-site"),
        ]
    )
    latest = {(x.asset, x.quantity): x for x in store.latest("depot")}
    assert set(latest) == {
        ("pv-roof", "power_kw"),
        ("pv-roof", "voltage_v"),
        ("battery", "soc_fraction"),
    }
    assert latest[("pv-roof", "power_kw")].value == 2.0
    assert latest[("pv-roof", "power_kw")].time == T0 + timedelta(seconds=60)
    assert latest[("battery", "soc_fraction")].quality is Quality.SUSPECT
    assert latest[("pv-roof", "voltage_v")].unit == "kW"
    assert {x.quantity for x in store.latest("depot", asset="battery")} == {"soc_fraction"}


def test_sites_and_assets_do_not_leak_into_each_other(store: Store) -> None:
    store.write([m(1.0, 0), m(2.0, 0, site="north"), m(3.0, 0, asset="pv-east")])
    got = store.query("depot", "pv-roof", "power_kw", T0, T0 + timedelta(seconds=1))
    assert values(got) == [1.0]


def test_events_filter_by_kind_and_asset_and_keep_their_data(store: Store) -> None:
    store.write_events(
        [
            Event(
                site="depot",
                kind="offline",
                asset="bess-1",
                time=T0,
                severity=Severity.ALARM,
                message="no telemetry for 30 s",
                data={"silent_s": 30},
            ),
            Event(
                site="depot",
                kind="anomaly",
                asset="pv-roof",
                time=T0 + timedelta(seconds=5),
                message="residual z=7.1",
                data={"z": 7.1, "tags": ["fdi"]},
            ),
            Event(site="depot", kind="anomaly", time=T0 + timedelta(seconds=9)),
            Event(site="north", kind="anomaly", time=T0 + timedelta(seconds=6)),
        ]
    )
    end = T0 + timedelta(minutes=1)
    everything = store.query_events("depot", T0, end)
    assert [e.kind for e in everything] == ["offline", "anomaly", "anomaly"]
    assert everything[0].severity is Severity.ALARM
    assert everything[0].data == {"silent_s": 30}
    anomalies = store.query_events("depot", T0, end, kind="anomaly", asset="pv-roof")
    assert len(anomalies) == 1
    assert anomalies[0].data == {"z": 7.1, "tags": ["fdi"]}
    assert anomalies[0].message == "residual z=7.1"
    assert store.query_events("depot", T0 + timedelta(seconds=6), end)[0].asset is None


def test_quotes_in_query_arguments_cannot_escape_the_filter(store: Store) -> None:
    store.write([m(1.0, 0)])
    assert (
        store.query("depot", "x' OR asset='pv-roof", "power_kw", T0, T0 + timedelta(seconds=1))
        == []
    )


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.integers(0, 10_000),
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=40,
    )
)
def test_what_is_written_is_what_is_read(store: Store, points: dict[int, float]) -> None:
    asset = f"a{abs(hash(frozenset(points.items()))) % 10**9}"
    store.write([m(v, s / 10, asset=asset) for s, v in points.items()])
    got = store.query("depot", asset, "power_kw", T0, T0 + timedelta(hours=1))
    assert [(round((s.time - T0).total_seconds() * 10), s.value) for s in got] == sorted(
        points.items()
    )
