"""Causal windows over a fold's feature matrix, and the scalers fitted on its training rows.

Shape legend: N rows, F features, T context, M selected rows, K target columns, B batch.

The window ending at row t holds X rows t-T+1 .. t and nothing later. Rows too early for a full
window are left-padded with the first row of X when *predicting* (every row gets a forecast) and
*skipped* when training or validating (no invented history in the loss).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

# standardised features are clipped here so one outlier day cannot dominate a batch
FEATURE_CLIP = 10.0


@dataclass(frozen=True)
class FeatureScaler:
    """Per-feature mean/std fitted on training rows only; NaN becomes 0 (the training mean)."""

    mean: np.ndarray  # (F,)
    std: np.ndarray   # (F,)

    @classmethod
    def fit(cls, X_train: np.ndarray) -> "FeatureScaler":
        X_train = np.asarray(X_train, dtype=np.float64)
        with np.errstate(all="ignore"):
            mean = np.nanmean(np.where(np.isfinite(X_train), X_train, np.nan), axis=0)
            std = np.nanstd(np.where(np.isfinite(X_train), X_train, np.nan), axis=0)
        mean = np.nan_to_num(mean, nan=0.0)
        std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        return cls(mean=mean.astype(np.float32), std=std.astype(np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:  # (N, F) -> (N, F) float32
        Z = (np.asarray(X, dtype=np.float32) - self.mean) / self.std
        Z = np.where(np.isfinite(Z), Z, 0.0)
        return np.clip(Z, -FEATURE_CLIP, FEATURE_CLIP).astype(np.float32)


@dataclass(frozen=True)
class TargetScaler:
    """Return standardised by its train mean/std; variance divided by its train mean."""

    ret_mean: float
    ret_std: float
    var_scale: float

    @classmethod
    def fit(cls, y_train: pd.DataFrame) -> "TargetScaler":
        ret = y_train["ret"].to_numpy(np.float64)
        var = y_train["var"].to_numpy(np.float64)
        ret, var = ret[np.isfinite(ret)], var[np.isfinite(var)]
        if ret.size < 2 or var.size < 1:
            raise ValueError("not enough finite training targets to fit the target scaler")
        std = float(ret.std())
        scale = float(var.mean())
        return cls(ret_mean=float(ret.mean()), ret_std=std if std > 1e-12 else 1.0,
                   var_scale=scale if scale > 1e-20 else 1.0)

    def transform(self, y: pd.DataFrame) -> np.ndarray:
        """(N, 3) targets -> (N, 4): scaled return, direction, scaled variance, squared return / var_scale."""
        ret = y["ret"].to_numpy(np.float64)
        return np.stack([(ret - self.ret_mean) / self.ret_std, y["dir"].to_numpy(np.float64),
                         y["var"].to_numpy(np.float64) / self.var_scale, ret * ret / self.var_scale],
                        axis=1).astype(np.float32)

    def unscale_return(self, r: np.ndarray) -> np.ndarray:
        return r * self.ret_std + self.ret_mean

    def unscale_var(self, v: np.ndarray) -> np.ndarray:
        return v * self.var_scale


def gather_windows(X: torch.Tensor, rows: torch.Tensor, context: int) -> torch.Tensor:
    """X (N, F), rows (M,) -> windows (M, T, F); row t uses X[t-T+1 .. t], left-padded with X[0]."""
    idx = rows[:, None] + torch.arange(1 - context, 1, device=rows.device)  # (M, T)
    return X[idx.clamp_min(0)]                                              # clamp = pad with row 0


def training_rows(rows: np.ndarray, targets: np.ndarray, context: int) -> np.ndarray:
    """Rows with a full window (t >= T-1) and finite targets; the order of `rows` is kept."""
    rows = np.asarray(rows, dtype=np.int64)
    ok = (rows >= context - 1) & np.isfinite(targets[rows]).all(axis=1)
    return rows[ok]


class WindowDataset:
    """Batches of (window, target[, environment]) gathered on demand, so (M, T, F) is never stored."""

    def __init__(self, X: np.ndarray, rows: np.ndarray, targets: np.ndarray, context: int,
                 env: np.ndarray | None = None) -> None:
        self.X = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))       # (N, F)
        self.rows = torch.as_tensor(np.asarray(rows, dtype=np.int64))             # (M,)
        self.targets = torch.as_tensor(np.ascontiguousarray(targets[rows], dtype=np.float32))  # (M, K)
        self.env = None if env is None else torch.as_tensor(np.asarray(env)[rows].astype(np.int64))
        self.context = int(context)

    def __len__(self) -> int:
        return int(self.rows.numel())

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = gather_windows(self.X, self.rows[idx], self.context)  # (B, T, F)
        if self.env is None:
            return x, self.targets[idx]
        return x, self.targets[idx], self.env[idx]
