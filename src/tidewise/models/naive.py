"""Naive baselines: the rows every model must beat to count as skill."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tidewise.models.base import QUANTILE_COLUMNS, FoldData, Forecaster, empty_predictions


class _Constant(Forecaster):
    """Shared plumbing: a few scalars learned on the fit rows, replayed on every predicted row."""

    family = "naive"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.values: dict[str, float] = {}

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"values": self.values}, {}

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.values = {k: float(v) for k, v in meta["values"].items()}

    def n_params(self) -> int:
        return len(self.values)

    def predict(self, data: FoldData, rows: np.ndarray) -> pd.DataFrame:
        out = empty_predictions(data.X.index[rows])
        for col, value in self.values.items():
            out[col] = value
        return out


class AlwaysUp(_Constant):
    """Predict 'up' every day with certainty. Its accuracy is the share of up days."""

    outputs = ("p_up",)

    def fit(self, data: FoldData) -> "AlwaysUp":
        self.values = {"p_up": 1.0}
        return self


class MajorityClass(_Constant):
    """The training slice's majority class, with the training up-share as its probability."""

    outputs = ("p_up",)

    def fit(self, data: FoldData) -> "MajorityClass":
        share = float(np.nanmean(data.y["dir"].iloc[data.fit_rows]))
        # The class decision is the majority; the probability stays on that side of 0.5.
        self.values = {"p_up": share if share != 0.5 else 0.5 + 1e-9}
        return self


class ZeroReturn(_Constant):
    """Forecast a zero return: the benchmark of out-of-sample R^2."""

    outputs = ("ret",)

    def fit(self, data: FoldData) -> "ZeroReturn":
        self.values = {"ret": 0.0}
        return self


class HistoricalMean(_Constant):
    """Climatology: training mean return, up-share, return quantiles and mean realised variance."""

    outputs = ("p_up", "ret", *QUANTILE_COLUMNS, "var")

    def fit(self, data: FoldData) -> "HistoricalMean":
        y = data.y.iloc[data.fit_rows].dropna()
        self.values = {"p_up": float(y["dir"].mean()), "ret": float(y["ret"].mean()),
                       "var": float(y["var"].mean())}
        for q, col in zip(data.quantiles, QUANTILE_COLUMNS):
            self.values[col] = float(np.quantile(y["ret"], q))
        return self


class Momentum(Forecaster):
    """Sign of the last daily return: up tomorrow if today was up. p_up is 1 or 0."""

    family = "naive"
    outputs = ("p_up", "ret")

    def fit(self, data: FoldData) -> "Momentum":
        y = data.y["ret"].iloc[data.fit_rows].dropna()
        self.scale = float(y.abs().mean())  # size of the signed return forecast
        return self

    def predict(self, data: FoldData, rows: np.ndarray) -> pd.DataFrame:
        out = empty_predictions(data.X.index[rows])
        sign = np.sign(data.returns.iloc[rows].fillna(0.0).to_numpy())
        out["p_up"] = (sign > 0).astype("float64")
        out["ret"] = sign * self.scale
        return out

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"scale": self.scale}, {}

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.scale = float(meta["scale"])

    def n_params(self) -> int:
        return 1
