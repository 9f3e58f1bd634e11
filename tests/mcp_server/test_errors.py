"""What a model reads when something goes wrong: bounded, one "nothing changed", and an
internal failure never passed off as the caller's mistake."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel, Field, ValidationError

from grid.errors import PolicyRefusal
from mcp_server.errors import MAX_ERROR_CHARS, clip_arguments, first_problem, tool_error


def test_an_internal_error_is_logged_with_a_reference_and_reported_as_internal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="mcp_server.errors"):
        text = str(tool_error(ValueError("index out of range in the model builder")))
    assert "Internal error" in text and "not caused by your input" in text
    assert "Invalid input" not in text and "index out of range" not in text
    ref = text.split("reference ")[1].split(")")[0]
    assert any(ref in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_refusal_says_nothing_changed_once_and_stays_short() -> None:
    text = str(tool_error(PolicyRefusal("some_new_rule", "x" * 10_000 + ". Nothing was changed")))
    assert text.startswith("Refused by rule 'some_new_rule'")
    assert text.count("Nothing was changed") == 1 and len(text) <= MAX_ERROR_CHARS


def test_a_validation_error_names_the_field_and_not_the_whole_value() -> None:
    class M(BaseModel):
        asset: str = Field(max_length=64)

    with pytest.raises(ValidationError) as caught:
        M(asset="y" * 100_000)
    field, check, text = first_problem(caught.value)
    assert (field, check) == ("asset", "string_too_long")
    assert "64" in text and len(text) <= MAX_ERROR_CHARS


def test_a_validation_error_from_inside_a_tool_is_internal() -> None:
    class Out(BaseModel):
        value: float

    with pytest.raises(ValidationError) as caught:
        Out(value="not a number")
    assert "Internal error" in str(tool_error(caught.value))


def test_audited_arguments_are_cut_and_never_keep_a_token() -> None:
    kept = clip_arguments(
        {"asset": "a" * 1_000_000, "power_kw": float("nan"), "confirmation_token": "cfm_secret"}
    )
    assert len(kept["asset"]) < 300 and kept["power_kw"] == "nan"
    assert kept["confirmation_token"] == "<given>" and "cfm_secret" not in str(kept)
