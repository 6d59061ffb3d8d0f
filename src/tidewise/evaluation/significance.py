"""Significance tests and intervals: "a number without its interval or test is not a finding".

- Diebold-Mariano on per-day losses, HAC variance and the Harvey-Leybourne-Newbold correction.
- A one-sided binomial test of accuracy against always-up.
- Block-bootstrap percentile intervals (arch.bootstrap) for any statistic, IC and Sharpe included.

NaNs in inputs are dropped pairwise. Shape legend: N rows (days).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from arch.bootstrap import CircularBlockBootstrap, MovingBlockBootstrap, StationaryBootstrap
from arch.covariance.kernel import Bartlett
from scipy import stats

from tidewise.evaluation.metrics import pearson_corr, spearman_corr, dropna_pairwise
from tidewise.evaluation.trading import sharpe_ratio

__all__ = [
    "diebold_mariano",
    "accuracy_vs_always_up",
    "block_bootstrap_ci",
    "ic_ci",
    "sharpe_ci",
]

_BOOTSTRAPS = {
    "stationary": StationaryBootstrap,
    "circular": CircularBlockBootstrap,
    "moving": MovingBlockBootstrap,
}


# -- Diebold-Mariano ----------------------------------------------------------------------
def _dm_long_run_variance(d: np.ndarray, h: int) -> float:
    """Long-run variance of the loss differential d (N,), as in Diebold and Mariano (1995).

    Written by hand because SciPy has no DM test and arch's kernels lack the truncated
    (uniform-weight) kernel that DM prescribe: an h-step forecast error
    is MA(h-1), so autocovariances beyond lag h-1 are zero and lags 0..h-1 get full weight.
    That sum can turn non-positive in small samples; then we fall back to arch's Bartlett
    (Newey-West) kernel with the same bandwidth, which is positive by construction.
    """
    n = len(d)
    u = d - d.mean()
    gamma = [float(u @ u) / n] + [float(u[k:] @ u[:-k]) / n for k in range(1, min(h, n))]
    lrv = gamma[0] + 2.0 * sum(gamma[1:])
    if lrv <= 0.0 and h > 1:
        lrv = float(Bartlett(u, bandwidth=h - 1, force_int=True).cov.long_run[0, 0])
    return lrv


def diebold_mariano(loss_model, loss_base, h: int = 1, *, hln: bool = True) -> dict[str, float]:
    """Test equal predictive accuracy from per-day losses (lower loss is better).

    d = loss_model - loss_base, stat = mean(d) / sqrt(LRV / N). With `hln` (the default) the
    Harvey-Leybourne-Newbold factor sqrt((N + 1 - 2h + h(h-1)/N) / N) shrinks the statistic and
    p-values come from Student-t with N-1 df; without it, the original DM with N(0, 1).

    Returns stat, p_value (two-sided), p_better (one-sided: the model's loss is lower; small when
    the model is better), mean_diff and n. Identical losses give stat 0 and p_value 1. A constant
    non-zero difference has zero variance and is decided exactly (stat +-inf, p_value 0).
    """
    if h < 1:
        raise ValueError("h must be >= 1")
    lm, lb = dropna_pairwise(loss_model, loss_base)
    d = lm - lb
    n = len(d)
    out = {"stat": float("nan"), "p_value": float("nan"), "p_better": float("nan"),
           "mean_diff": float(d.mean()) if n else float("nan"), "n": float(n)}
    if n < 2:
        return out
    dbar = float(d.mean())
    # A float-noise tolerance: losses computed in different orders can differ by ~1e-16.
    scale = max(float(np.max(np.abs(lm))), float(np.max(np.abs(lb))), 1.0)
    if np.ptp(d) <= 1e-14 * scale:
        if abs(dbar) <= 1e-14 * scale:
            out.update(stat=0.0, p_value=1.0, p_better=0.5)
        else:
            out.update(stat=float(np.copysign(np.inf, dbar)), p_value=0.0,
                       p_better=0.0 if dbar < 0 else 1.0)
        return out
    lrv = _dm_long_run_variance(d, h)
    stat = dbar / np.sqrt(lrv / n)
    if hln:
        stat *= np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
        dist = stats.t(df=n - 1)
    else:
        dist = stats.norm()
    out.update(
        stat=float(stat),
        p_value=float(2.0 * dist.sf(abs(stat))),
        p_better=float(dist.cdf(stat)),
    )
    return out


# -- accuracy against always-up -----------------------------------------------------------
def accuracy_vs_always_up(correct_model, y_dir) -> dict[str, float]:
    """One-sided exact binomial test that the model's hit rate beats always-up on the same days.

    base_acc is the share of up days, i.e. always-up's accuracy on exactly these rows; the test
    treats it as the null hit probability (scipy.stats.binomtest, alternative="greater").
    """
    c, y = dropna_pairwise(correct_model, y_dir)
    n = len(c)
    if n == 0:
        return {"acc": float("nan"), "base_acc": float("nan"), "p_value": float("nan"), "n": 0.0}
    k = int(np.sum(c != 0))
    base = float(np.mean(y > 0))
    res = stats.binomtest(k, n, p=base, alternative="greater")
    return {"acc": k / n, "base_acc": base, "p_value": float(res.pvalue), "n": float(n)}


# -- block bootstrap ----------------------------------------------------------------------
def block_bootstrap_ci(
    func: Callable[..., float],
    *arrays,
    block: int = 20,
    n_boot: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
    method: str = "stationary",
) -> tuple[float, float]:
    """Percentile (1 - alpha) interval of func(*arrays) under a block bootstrap of the rows.

    The arrays (each (N,)) are resampled jointly, the same blocks for all, so their pairing and
    short-range dependence survive. `method` picks the arch.bootstrap scheme: "stationary"
    (Politis-Romano, geometric block lengths of mean `block`), "circular" or "moving".
    Replicates where func returns NaN (e.g. a constant resample) are ignored.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must lie in (0, 1)")
    if method not in _BOOTSTRAPS:
        raise ValueError(f"method must be one of {tuple(_BOOTSTRAPS)}, got {method!r}")
    cols = dropna_pairwise(*arrays)
    if len(cols[0]) < 2:
        return float("nan"), float("nan")
    bs = _BOOTSTRAPS[method](block, *cols, seed=seed)
    # apply() rather than conf_int(): conf_int fails on NaN replicates, which a degenerate
    # resample (one class, constant series) can produce.
    reps = bs.apply(lambda *a: np.atleast_1d(float(func(*a))), reps=n_boot)[:, 0]
    reps = reps[np.isfinite(reps)]
    if len(reps) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def ic_ci(y, f, *, rank: bool = False, **kwargs) -> tuple[float, float]:
    """Block-bootstrap interval of the IC (Pearson, or Spearman with rank=True) of f against y."""
    corr = spearman_corr if rank else pearson_corr
    return block_bootstrap_ci(lambda a, b: corr(b, a), y, f, **kwargs)


def sharpe_ci(strategy_rets, *, periods_per_year: int = 252, **kwargs) -> tuple[float, float]:
    """Block-bootstrap interval of the annualised Sharpe ratio of daily strategy returns."""
    return block_bootstrap_ci(lambda r: sharpe_ratio(r, periods_per_year), strategy_rets, **kwargs)
