from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from grid.config import hash_token, load_site, parse_site
from grid.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "examples" / "site.toml"


@pytest.fixture
def raw() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def error_for(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_site(raw)
    return str(caught.value)


def test_example_site_describes_the_promised_site() -> None:
    site = load_site(EXAMPLE)
    loads = site.assets.loads
    assert len(loads) == 4 and {ld.board for ld in loads} == {"relay-board-1"}
    assert sum(ld.critical for ld in loads) == 2
    assert site.assets.pv[0].peak_kw == 20.0
    assert site.assets.batteries[0].capacity_kwh == 50.0
    assert site.assets.peakers[0].max_kw == 30.0
    assert site.tariff.demand_charge_eur_per_kw > 0
    assert len({p.price_eur_per_kwh for p in site.tariff.import_periods}) > 1
    # the store path is taken relative to the site file, not the working directory
    assert (
        site.settings.store_url == f"sqlite:///{(EXAMPLE.parent / '../var/gridpilot.db').resolve()}"
    )


def test_demo_tokens_match_their_hashes() -> None:
    site = load_site(EXAMPLE)
    assert site.principal("agent").token_sha256 == hash_token("demo-agent-token")


def test_soc_window_inverted_names_both_fields_and_values(raw: dict) -> None:
    raw["assets"]["batteries"][0]["soc_min_fraction"] = 0.95
    raw["assets"]["batteries"][0]["soc_max_fraction"] = 0.2
    message = error_for(raw)
    assert "assets.batteries[0]" in message
    assert "soc_min_fraction (0.95) must be below soc_max_fraction (0.2)" in message


def test_out_of_range_value_names_field_value_and_limit(raw: dict) -> None:
    raw["assets"]["batteries"][0]["charge_efficiency"] = 1.3
    message = error_for(raw)
    assert "assets.batteries[0].charge_efficiency = 1.3" in message
    assert "less than or equal to 1" in message


def test_load_on_a_missing_channel_is_refused(raw: dict) -> None:
    raw["assets"]["loads"][3]["channel"] = 6
    message = error_for(raw)
    assert "assets.loads[hvac-office].channel = 6 exceeds the 4 channels" in message


def test_two_loads_on_one_relay_channel_are_refused(raw: dict) -> None:
    raw["assets"]["loads"][3]["channel"] = 3
    assert "share channel 3 of board 'relay-board-1'" in error_for(raw)


def test_asset_pointing_at_wrong_device_kind_is_refused(raw: dict) -> None:
    raw["assets"]["batteries"][0]["device"] = "meter-1"
    message = error_for(raw)
    assert "assets.batteries[battery].device = 'meter-1' must be a battery_inverter" in message


def test_unknown_device_reference_is_refused(raw: dict) -> None:
    raw["assets"]["pv"][0]["device"] = "pv-inv-9"
    assert "'pv-inv-9' names no device" in error_for(raw)


def test_tou_periods_with_a_gap_name_the_uncovered_minute(raw: dict) -> None:
    del raw["tariff"]["import_periods"][1]  # 07:00-17:00 now uncovered
    message = error_for(raw)
    assert "tariff" in message and "07:00 is covered by no period" in message


def test_misspelled_field_is_not_silently_ignored(raw: dict) -> None:
    raw["grid"]["import_limt_kw"] = 50
    message = error_for(raw)
    assert "grid.import_limt_kw: unknown field" in message
    assert "grid.import_limit_kw: required field is missing" not in message


def test_missing_required_field_is_named(raw: dict) -> None:
    del raw["grid"]["import_limit_kw"]
    assert "grid.import_limit_kw: required field is missing" in error_for(raw)


def test_bad_timezone_and_step_are_named(raw: dict) -> None:
    bad = copy.deepcopy(raw)
    bad["site"]["timezone"] = "Europe/Atlantis"
    bad["site"]["step_s"] = 700
    message = error_for(bad)
    assert "site.timezone = 'Europe/Atlantis': unknown IANA time zone" in message
    assert "site.step_s = 700: must divide a day" in message


def test_bad_token_hash_and_unknown_stdio_principal(raw: dict) -> None:
    raw["principals"][0]["token_sha256"] = "not-a-hash"
    assert "principals[0].token_sha256 = 'not-a-hash'" in error_for(raw)
    raw["principals"][0]["token_sha256"] = hash_token("x")
    raw["settings"]["stdio_principal"] = "nobody"
    assert "settings.stdio_principal = 'nobody' names no principal" in error_for(raw)


def test_store_url_scheme_is_checked(raw: dict) -> None:
    raw["settings"]["store_url"] = "postgres://db/site"
    assert "settings.store_url = 'postgres://db/site'" in error_for(raw)


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text("[site]\nname = \n")
    with pytest.raises(ConfigError, match=r"site.toml: not valid TOML: .*line 2"):
        load_site(bad)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such site file"):
        load_site(tmp_path / "absent.toml")
