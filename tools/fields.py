"""Strict field types for the tools' request models, shared so every tool refuses the
same garbage the same way.

No coercion: `true` is not a number and `"25"` is not 25 kW (pydantic strict mode);
NaN and infinity are refused; every string is bounded. Ids are checked against the
site when the model is validated with `context={"site": site}` (the MCP layer does),
and an unknown id is answered with the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field, ValidationInfo
from pydantic_core import PydanticCustomError

from grid.config import SiteConfig

IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


def Id(description: str, optional: bool = False) -> Any:
    """An identifier: the site file's alphabet, at most 64 characters."""
    return Annotated[
        str | None if optional else str,
        Field(
            strict=True, min_length=1, max_length=64, pattern=IDENT_PATTERN, description=description
        ),
    ]


def Number(description: str, ge: float, le: float, gt: float | None = None) -> Any:
    bounds: dict[str, float] = {"le": le}
    bounds.update({"gt": gt} if gt is not None else {"ge": ge})
    return Annotated[
        float, Field(strict=True, allow_inf_nan=False, description=description, **bounds)
    ]


def Integer(description: str, ge: int, le: int) -> Any:
    return Annotated[int, Field(strict=True, ge=ge, le=le, description=description)]


def Text(description: str, max_length: int, min_length: int = 0) -> Any:
    return Annotated[
        str,
        Field(strict=True, min_length=min_length, max_length=max_length, description=description),
    ]


Flag = Annotated[bool, Field(strict=True)]


def check_id(
    value: str | None, info: ValidationInfo, kind: str, valid: Callable[[SiteConfig], list[str]]
) -> str | None:
    """Refuse an id the site does not have, listing the ones it does (`unknown_id`)."""
    site = (info.context or {}).get("site")
    if value is None or site is None:
        return value
    known = valid(site)
    if value not in known:
        raise PydanticCustomError(
            "unknown_id",
            "no {kind} {value!r}; one of: {known}",
            {"kind": kind, "value": value, "known": ", ".join(known)},
        )
    return value


def loads(site: SiteConfig) -> list[str]:
    return [ld.id for ld in site.assets.loads]


def setpoint_assets(site: SiteConfig) -> list[str]:
    a = site.assets
    return [x.id for x in (*a.batteries, *a.pv, *a.peakers)]


def assets(site: SiteConfig) -> list[str]:
    return sorted(site.asset_ids())


def history_sources(site: SiteConfig) -> list[str]:
    """What history is kept under: every asset, the grid connection and the tariff."""
    return [*assets(site), "grid", "tariff"]


def principals(site: SiteConfig) -> list[str]:
    return [p.name for p in site.principals]
