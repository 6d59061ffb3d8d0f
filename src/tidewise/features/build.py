"""Causal features and horizon-h targets.

Every feature at row t is computed from rows <= t only (rolling windows end at t, shifts are
non-negative). Targets at row t look h rows ahead and are therefore NaN on the last h rows.
Scaling is NOT done here: scalers are fitted per fold on the training slice (see `FoldScaler`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Parkinson (1980): E[(ln H/L)^2] = 4 ln 2 * sigma^2 for a driftless Brownian motion.
_PARKINSON = 1.0 / (4.0 * np.log(2.0))


@dataclass(frozen=True)
class FeatureConfig:
    lags: int = 5
    vol_windows: tuple[int, ...] = (5, 21, 63)
    momentum_windows: tuple[int, ...] = (5, 21, 63)
    volume_window: int = 63


def log_returns(close: pd.Series) -> pd.Series:
    """r_t = log(close_t / close_{t-1}); NaN on the first row."""
    return np.log(close).diff().rename("r")


def build_features(ohlcv: pd.DataFrame, context: pd.DataFrame | None = None,
                   config: FeatureConfig = FeatureConfig()) -> pd.DataFrame:
    """(N, F) causal features. `context` holds as-of-aligned exogenous levels (one column each)."""
    close = ohlcv["close"]
    r = log_returns(close)
    feats: dict[str, pd.Series] = {}
    for k in range(config.lags):
        feats[f"ret_lag{k + 1}"] = r.shift(k)
    for w in config.vol_windows:
        feats[f"vol_{w}"] = r.rolling(w).std()
    log_range = np.log(ohlcv["high"] / ohlcv["low"])
    feats["range"] = log_range
    feats["parkinson_21"] = np.sqrt((log_range ** 2 * _PARKINSON).rolling(21).mean())
    feats["gap"] = np.log(ohlcv["open"] / close.shift(1))
    feats["intraday"] = np.log(close / ohlcv["open"])
    for w in config.momentum_windows:
        feats[f"mom_{w}"] = np.log(close / close.shift(w))
    log_vol = np.log1p(ohlcv["volume"])
    roll = log_vol.rolling(config.volume_window)
    feats["volume_z"] = (log_vol - roll.mean()) / roll.std().replace(0.0, np.nan)
    if context is not None:
        for name in context.columns:
            level = context[name].astype("float64")
            cr = np.log(level).diff()
            feats[f"ctx_{name}_ret"] = cr
            feats[f"ctx_{name}_mom_21"] = np.log(level / level.shift(21))
            feats[f"ctx_{name}_vol_21"] = cr.rolling(21).std()
    out = pd.DataFrame(feats, index=ohlcv.index)
    # A zero-volume day gives volume_z NaN only through the std guard; fill with 0 (no information).
    out["volume_z"] = out["volume_z"].fillna(0.0)
    return out.replace([np.inf, -np.inf], np.nan)


def build_targets(close: pd.Series, horizon: int = 1) -> pd.DataFrame:
    """Targets exactly as in EVALUATION.md (h = horizon):

    ret_t = log(close_{t+h} / close_t);  dir_t = 1 if ret_t > 0 else 0;
    var_t = sum_{k=1..h} r_{t+k}^2  (realised variance over the next h days).
    """
    if horizon < 1:
        raise ValueError("horizon must be >= 1")
    r = log_returns(close)
    ret = np.log(close.shift(-horizon) / close)
    var = sum((r.shift(-k) ** 2) for k in range(1, horizon + 1))
    direction = (ret > 0).astype("float64").where(ret.notna())
    return pd.DataFrame({"ret": ret, "dir": direction, "var": var}, index=close.index)


class FoldScaler:
    """Mean/std scaler fitted on a fold's training rows only (no look-ahead)."""

    def fit(self, X: pd.DataFrame | np.ndarray) -> "FoldScaler":
        arr = np.asarray(X, dtype="float64")
        self.mean_ = np.nanmean(arr, axis=0)
        std = np.nanstd(arr, axis=0)
        self.std_ = np.where(std > 1e-12, std, 1.0)
        return self

    def transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        arr = (np.asarray(X, dtype="float64") - self.mean_) / self.std_
        return np.nan_to_num(arr, nan=0.0)

    def state(self) -> dict[str, np.ndarray]:
        return {"scaler_mean": self.mean_, "scaler_std": self.std_}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> "FoldScaler":
        s = cls()
        s.mean_, s.std_ = np.asarray(arrays["scaler_mean"]), np.asarray(arrays["scaler_std"])
        return s
