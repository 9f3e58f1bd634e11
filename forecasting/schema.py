"""What a forecast looks like to the rooms above: pydantic only, so the MCP server can
describe the `forecast` tool without importing pandas or XGBoost (they load on the
first forecast)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Target = Literal["load", "pv", "price", "net_load", "net_load_change_30min"]


class Forecast(BaseModel):
    target: Target
    unit: str  # "kW" or "EUR/kWh"
    times: list[datetime]  # UTC, step starts
    p50: list[float]
    p10: list[float]
    p90: list[float]
    method: Literal["xgboost", "seasonal_naive", "persistence"]
    model_version: str | None
    note: str
