"""Forecast-skill metrics for every prediction column (see docs/EVALUATION.md).

Inputs are numpy arrays or pandas Series of equal length N (one value per test day); rows where
any input is NaN are dropped pairwise. Summary functions return plain dicts of floats and give NaN
for a metric that is undefined on the rows left (AUC with one class, a correlation with a constant
series, anything on zero rows). Elementwise loss functions return (N,) arrays with NaN where an
input is NaN, so that :func:`tidewise.evaluation.significance.diebold_mariano` can pair them.

Shape legend: N rows (days), Q quantiles.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

PROB_EPS = 1e-6  # probabilities are clipped to [PROB_EPS, 1 - PROB_EPS] before log loss
VAR_FLOOR = 1e-12  # variance forecasts are floored here before QLIKE

__all__ = [
    "PROB_EPS",
    "VAR_FLOOR",
    "as_float",
    "dropna_pairwise",
    "pearson_corr",
    "spearman_corr",
    "direction_metrics",
    "return_metrics",
    "pinball_loss",
    "quantile_metrics",
    "quantile_column",
    "qlike_loss",
    "volatility_metrics",
    "squared_error",
    "absolute_error",
    "log_loss_elementwise",
    "brier_elementwise",
]


# -- input handling -----------------------------------------------------------------------
def as_float(x) -> np.ndarray:
    """1-D float64 copy of an array-like (Series, list, array); pandas NA becomes NaN."""
    if isinstance(x, (pd.Series, pd.Index)):
        return x.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(x, dtype="float64").reshape(-1)


def dropna_pairwise(*arrays) -> tuple[np.ndarray, ...]:
    """Float copies of the arrays with every row that is NaN in any of them removed.

    Series are taken position by position (callers pass rows already aligned), so lengths must match.
    """
    cols = [as_float(a) for a in arrays]
    n = {len(c) for c in cols}
    if len(n) > 1:
        raise ValueError(f"inputs differ in length: {[len(c) for c in cols]}")
    keep = np.ones(len(cols[0]) if cols else 0, dtype=bool)
    for c in cols:
        keep &= ~np.isnan(c)
    return tuple(c[keep] for c in cols)


def _nan_dict(keys: Sequence[str], n: int = 0) -> dict[str, float]:
    out = {k: float("nan") for k in keys}
    out["n"] = float(n)
    return out


def pearson_corr(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two NaN-free (N,) arrays; NaN if undefined."""
    # A correlation is undefined for fewer than 2 rows or a constant series; scipy warns and returns NaN.
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.pearsonr(x, y).statistic)


def spearman_corr(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of two NaN-free (N,) arrays; NaN if undefined."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


# -- direction ----------------------------------------------------------------------------
_DIRECTION_KEYS = ("accuracy", "balanced_accuracy", "auc", "brier", "log_loss")


def direction_metrics(y_dir, p_up) -> dict[str, float]:
    """Skill of an up-probability forecast against realised direction (1 up, 0 not up).

    The hard call is "up" when p_up > 0.5 (p_up == 0.5 counts as "not up", matching a flat
    position in :mod:`tidewise.evaluation.trading`).
    """
    y, p = dropna_pairwise(y_dir, p_up)
    if len(y) == 0:
        return _nan_dict(_DIRECTION_KEYS)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_dir must hold only 0 and 1")
    y = y.astype(int)
    p = np.clip(p, PROB_EPS, 1.0 - PROB_EPS)
    call = (p > 0.5).astype(int)
    two_classes = len(np.unique(y)) == 2
    with warnings.catch_warnings():
        # balanced accuracy with one class in y warns but is still defined (recall of that class)
        warnings.simplefilter("ignore", UserWarning)
        bal = skm.balanced_accuracy_score(y, call)
    return {
        "accuracy": float(skm.accuracy_score(y, call)),
        "balanced_accuracy": float(bal),
        "auc": float(skm.roc_auc_score(y, p)) if two_classes else float("nan"),
        "brier": float(skm.brier_score_loss(y, p, pos_label=1)),
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "n": float(len(y)),
    }


def log_loss_elementwise(y_dir, p) -> np.ndarray:
    """Per-row binary cross-entropy, probabilities clipped to [PROB_EPS, 1 - PROB_EPS]; (N,)."""
    y, q = as_float(y_dir), np.clip(as_float(p), PROB_EPS, 1.0 - PROB_EPS)
    return -(y * np.log(q) + (1.0 - y) * np.log1p(-q))


def brier_elementwise(y_dir, p) -> np.ndarray:
    """Per-row squared error of the probability; (N,)."""
    return (as_float(p) - as_float(y_dir)) ** 2


# -- point returns ------------------------------------------------------------------------
def squared_error(y, f) -> np.ndarray:
    """Per-row squared error; (N,)."""
    return (as_float(y) - as_float(f)) ** 2


def absolute_error(y, f) -> np.ndarray:
    """Per-row absolute error; (N,)."""
    return np.abs(as_float(y) - as_float(f))


def return_metrics(y_ret, ret_hat) -> dict[str, float]:
    """IC (Pearson), rank IC (Spearman) and out-of-sample R^2 against the zero forecast.

    r2_oos = 1 - sum((y - f)^2) / sum(y^2): 0 for the zero forecast, 1 for a perfect one, negative
    when the forecast is worse than predicting no move (Campbell-Thompson style, benchmark 0).
    """
    y, f = dropna_pairwise(y_ret, ret_hat)
    if len(y) == 0:
        return _nan_dict(("ic", "rank_ic", "r2_oos"))
    denom = float(np.sum(y**2))
    r2 = 1.0 - float(np.sum((y - f) ** 2)) / denom if denom > 0 else float("nan")
    return {"ic": pearson_corr(f, y), "rank_ic": spearman_corr(f, y), "r2_oos": r2, "n": float(len(y))}


# -- quantiles ----------------------------------------------------------------------------
def quantile_column(q: float) -> str:
    """Column name of quantile level q, following tidewise.models.base (0.1 -> 'q10')."""
    return f"q{int(round(q * 100))}"


def pinball_loss(y, q_hat, q: float) -> np.ndarray:
    """Elementwise pinball (quantile) loss at level q; (N,).

    Hand-written because sklearn's mean_pinball_loss only returns the mean, and the
    Diebold-Mariano test needs the per-day losses.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must lie in (0, 1), got {q}")
    u = as_float(y) - as_float(q_hat)
    return np.maximum(q * u, (q - 1.0) * u)


def quantile_metrics(
    y_ret, q_frame: pd.DataFrame, quantiles: Sequence[float] = (0.1, 0.5, 0.9)
) -> dict[str, float]:
    """Mean pinball loss per level and overall, and coverage of the outer interval.

    q_frame (N, Q) holds one column per level, named like 'q10'. Rows with NaN in y or in any of
    the quantile columns are dropped. The coverage key names the outermost levels, e.g.
    'coverage_10_90' is the share of y inside [q10, q90] (bounds included).
    """
    qs = sorted(float(q) for q in quantiles)
    cols = [quantile_column(q) for q in qs]
    missing = [c for c in cols if c not in q_frame.columns]
    if missing:
        raise KeyError(f"q_frame lacks columns {missing}")
    y, *preds = dropna_pairwise(y_ret, *(q_frame[c] for c in cols))
    cover_key = f"coverage_{cols[0][1:]}_{cols[-1][1:]}"
    keys = ["pinball", *(f"pinball_{c}" for c in cols), cover_key]
    if len(y) == 0:
        return _nan_dict(keys)
    out: dict[str, float] = {}
    per_level = [float(np.mean(pinball_loss(y, p, q))) for q, p in zip(qs, preds)]
    out["pinball"] = float(np.mean(per_level))
    for c, v in zip(cols, per_level):
        out[f"pinball_{c}"] = v
    if len(qs) >= 2:
        out[cover_key] = float(np.mean((y >= preds[0]) & (y <= preds[-1])))
    else:
        out[cover_key] = float("nan")
    out["n"] = float(len(y))
    return out


# -- volatility ---------------------------------------------------------------------------
def qlike_loss(y_var, var_hat) -> np.ndarray:
    """Elementwise QLIKE = log(v_hat) + y / v_hat, v_hat floored at VAR_FLOOR; (N,).

    For a fixed y > 0 it is minimised at v_hat = y, and it is robust to noise in the variance proxy
    (Patton 2011), which is why it ranks volatility forecasts here.
    """
    v = np.maximum(as_float(var_hat), VAR_FLOOR)
    return np.log(v) + as_float(y_var) / v


def volatility_metrics(y_var, var_hat) -> dict[str, float]:
    """QLIKE (mean, lower is better), MSE of the variance and Pearson correlation."""
    y, v = dropna_pairwise(y_var, var_hat)
    if len(y) == 0:
        return _nan_dict(("qlike", "mse_var", "corr"))
    return {
        "qlike": float(np.mean(qlike_loss(y, v))),
        "mse_var": float(np.mean((y - v) ** 2)),
        "corr": pearson_corr(v, y),
        "n": float(len(y)),
    }
