"""Volatility baselines from `arch`: GARCH(1,1) with Student-t errors, and RiskMetrics EWMA.

Both are fitted (GARCH) or initialised (EWMA) on returns up to the last fit row, then filtered
through the test block with parameters fixed: the forecast made at day t uses returns <= t only.
Returns are scaled by 100 for `arch`'s optimiser, and variances scaled back by 1e-4.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from arch import arch_model
from arch.univariate import EWMAVariance, ZeroMean

from tidewise.models.base import FoldData, Forecaster, empty_predictions

_SCALE = 100.0


def _pct_returns(data: FoldData, upto: int) -> pd.Series:
    r = data.returns.iloc[: upto + 1]
    return (r.iloc[1:] if np.isnan(r.iloc[0]) else r).fillna(0.0) * _SCALE


def garch_fit(returns_pct: pd.Series) -> np.ndarray:
    """Fit GARCH(1,1)-t with a constant mean; return its parameter vector (mu, omega, alpha, beta, nu)."""
    am = arch_model(returns_pct, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)
    res = am.fit(disp="off", show_warning=False)
    return np.asarray(res.params, dtype="float64")


def garch_variance_forecast(returns_pct: pd.Series, params: np.ndarray, dates: pd.Index,
                            horizon: int) -> np.ndarray:
    """Sum of the 1..h step variance forecasts made at each date in `dates` (fixed params), in
    squared log-return units."""
    am = arch_model(returns_pct, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)
    fc = am.fix(params).forecast(horizon=horizon, start=dates[0], reindex=False)
    return fc.variance.loc[dates].sum(axis=1).to_numpy() / _SCALE ** 2


class GarchT(Forecaster):
    family = "classical"
    outputs = ("var",)

    def fit(self, data: FoldData) -> "GarchT":
        self.params = garch_fit(_pct_returns(data, int(data.fit_rows.max())))
        return self

    def predict(self, data: FoldData, rows: np.ndarray) -> pd.DataFrame:
        out = empty_predictions(data.X.index[rows])
        r = _pct_returns(data, int(rows.max()))
        out["var"] = garch_variance_forecast(r, self.params, data.X.index[rows], data.horizon)
        return out

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"params": self.params}

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.params = np.asarray(arrays["params"])

    def flops_per_sample(self) -> float:
        return 6.0  # one variance recursion step: omega + alpha*e^2 + beta*s^2


class EWMAVol(Forecaster):
    """RiskMetrics EWMA variance, lambda = 0.94 (no parameters are estimated)."""

    family = "classical"
    outputs = ("var",)

    def __init__(self, lam: float = 0.94, **kwargs: Any) -> None:
        super().__init__(lam=lam, **kwargs)
        self.lam = lam

    def fit(self, data: FoldData) -> "EWMAVol":
        return self

    def predict(self, data: FoldData, rows: np.ndarray) -> pd.DataFrame:
        out = empty_predictions(data.X.index[rows])
        r = _pct_returns(data, int(rows.max()))
        model = ZeroMean(r, volatility=EWMAVariance(self.lam), rescale=False)
        fc = model.fix([]).forecast(horizon=1, start=data.X.index[rows][0], reindex=False)
        # EWMA is a random walk in variance: the h-step forecast is h times the 1-step one.
        out["var"] = fc.variance.loc[data.X.index[rows]].iloc[:, 0].to_numpy() * data.horizon / _SCALE ** 2
        return out

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {}

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        pass

    def n_params(self) -> int:
        return 0

    def flops_per_sample(self) -> float:
        return 4.0


__all__ = ["GarchT", "EWMAVol", "garch_fit", "garch_variance_forecast"]
