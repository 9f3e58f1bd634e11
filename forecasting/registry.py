"""Models on disk in XGBoost's own format, with metadata; list, promote, roll back.

Layout: `<dir>/<target>/<version>/model.json` + `meta.json`, and `<dir>/<target>/
CURRENT` naming the promoted version (previous ones in `HISTORY`, for roll back).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from forecasting.features import FEATURES
from forecasting.models import QUANTILES, Trained


class ModelMeta(BaseModel):
    target: str
    version: str
    step_s: int
    features: list[str]
    quantiles: list[float]
    train_start: datetime
    train_end: datetime
    rows: int
    band_scale: float = 1.0
    band_scale_by_horizon: dict[int, float] = {}
    model_weight_by_horizon: dict[int, float] = {}
    metrics: dict[str, float] = {}
    created_at: datetime


def _target_dir(root: Path, target: str) -> Path:
    return root / target


def save(
    root: Path, trained: Trained, metrics: dict[str, float] | None = None, promote: bool = True
) -> ModelMeta:
    version = datetime.now(UTC).strftime("v%Y%m%dT%H%M%S%f")
    folder = _target_dir(root, trained.target) / version
    folder.mkdir(parents=True, exist_ok=True)
    trained.model.save_model(folder / "model.json")
    meta = ModelMeta(
        target=trained.target,
        version=version,
        step_s=trained.step_s,
        features=FEATURES,
        quantiles=list(QUANTILES),
        train_start=trained.train_start.to_pydatetime(),
        train_end=trained.train_end.to_pydatetime(),
        rows=trained.rows,
        band_scale=trained.band_scale,
        band_scale_by_horizon=trained.band_scale_by_horizon,
        model_weight_by_horizon=trained.model_weight_by_horizon,
        metrics=metrics or {},
        created_at=datetime.now(UTC),
    )
    (folder / "meta.json").write_text(meta.model_dump_json(indent=2))
    if promote:
        promote_version(root, trained.target, version)
    return meta


def versions(root: Path, target: str) -> list[ModelMeta]:
    folder = _target_dir(root, target)
    if not folder.exists():
        return []
    return sorted(
        (
            ModelMeta.model_validate_json((d / "meta.json").read_text())
            for d in folder.iterdir()
            if (d / "meta.json").exists()
        ),
        key=lambda m: m.version,
    )


def current(root: Path, target: str) -> str | None:
    pointer = _target_dir(root, target) / "CURRENT"
    return pointer.read_text().strip() if pointer.exists() else None


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def promote_version(root: Path, target: str, version: str) -> None:
    folder = _target_dir(root, target)
    if not (folder / version / "model.json").exists():
        raise ValueError(f"no {target} model {version!r} in {folder}")
    before = current(root, target)
    if before and before != version:
        history = folder / "HISTORY"
        lines = history.read_text().split() if history.exists() else []
        _write(history, "\n".join([*lines, before]) + "\n")
    _write(folder / "CURRENT", version + "\n")


def roll_back(root: Path, target: str) -> str:
    """Make the previously promoted version current again; returns it."""
    folder = _target_dir(root, target)
    history = folder / "HISTORY"
    lines = history.read_text().split() if history.exists() else []
    if not lines:
        raise ValueError(f"no earlier {target} model to roll back to")
    previous = lines.pop()
    _write(history, "\n".join(lines) + ("\n" if lines else ""))
    _write(folder / "CURRENT", previous + "\n")
    return previous


# (model folder, model.json's mtime) -> the loaded model: parsing the JSON took most of
# a forecast call. A version folder is written once, so the key changes with it.
_LOADED: dict[tuple[Path, int], tuple[Trained, ModelMeta]] = {}


def load(root: Path, target: str, version: str | None = None) -> tuple[Trained, ModelMeta] | None:
    """The promoted (or named) model; the same objects again while its files are unchanged.
    Callers only read them."""
    version = version or current(root, target)
    if version is None:
        return None
    folder = _target_dir(root, target) / version
    key = (folder.resolve(), (folder / "model.json").stat().st_mtime_ns)
    if key not in _LOADED:
        if len(_LOADED) >= 16:  # a few targets and versions; never grows with time
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = _read(folder, target)
    return _LOADED[key]


def _read(folder: Path, target: str) -> tuple[Trained, ModelMeta]:
    meta = ModelMeta.model_validate_json((folder / "meta.json").read_text())
    from xgboost import XGBRegressor  # heavy: loaded with the first model

    model = XGBRegressor()
    model.load_model(folder / "model.json")
    trained = Trained(
        target=target,
        step_s=meta.step_s,
        model=model,
        train_start=pd.Timestamp(meta.train_start),
        train_end=pd.Timestamp(meta.train_end),
        rows=meta.rows,
        band_scale=meta.band_scale,
        band_scale_by_horizon=meta.band_scale_by_horizon,
        model_weight_by_horizon=meta.model_weight_by_horizon,
    )
    return trained, meta


def describe(root: Path, target: str) -> list[dict]:
    promoted = current(root, target)
    return [
        json.loads(m.model_dump_json()) | {"current": m.version == promoted}
        for m in versions(root, target)
    ]
