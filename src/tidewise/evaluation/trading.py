"""A one-asset sign-following backtest after costs (see docs/EVALUATION.md, "trading").

Timing: the signal for day t is known at the close of t, the position taken then is held from t to
t+1 and earns next_ret_t = log(close_{t+1} / close_t). Profit and loss uses the simple return
exp(next_ret) - 1. Trading at t costs cost_bps / 1e4 per unit of turnover |pos_t - pos_{t-1}|,
charged against day t's return; the first position counts as turnover from flat.

Rows where the signal or the next return is NaN are dropped pairwise before positions are formed,
so the position carried into the next kept row is the one held before the gap.

Shape legend: N rows (days).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

Mode = Literal["long_short", "long_flat"]
MODES: tuple[str, ...] = ("long_short", "long_flat")

__all__ = [
    "MODES",
    "positions_from_signal",
    "backtest",
    "strategy_returns",
    "buy_and_hold",
    "equity_curve",
    "max_drawdown",
    "sharpe_ratio",
    "trading_metrics",
]


def _aligned(signal, next_ret) -> pd.DataFrame:
    """(N, 2) frame of signal and next return with NaN rows dropped; Series are aligned by index."""
    if isinstance(signal, pd.Series) and isinstance(next_ret, pd.Series):
        if not signal.index.equals(next_ret.index):
            signal, next_ret = signal.align(next_ret, join="inner")
        index = signal.index
    elif isinstance(signal, pd.Series) or isinstance(next_ret, pd.Series):
        index = (signal if isinstance(signal, pd.Series) else next_ret).index
    else:
        index = None
    s = np.asarray(signal, dtype="float64").reshape(-1)
    r = np.asarray(next_ret, dtype="float64").reshape(-1)
    if len(s) != len(r):
        raise ValueError(f"signal has {len(s)} rows, next_ret {len(r)}")
    frame = pd.DataFrame({"signal": s, "next_ret": r}, index=index)
    return frame.dropna()


def positions_from_signal(signal, mode: Mode = "long_short") -> np.ndarray:
    """Position per day: sign(signal) for long_short, 1 if signal > 0 else 0 for long_flat; (N,)."""
    s = np.asarray(signal, dtype="float64")
    if mode == "long_short":
        return np.sign(s)
    if mode == "long_flat":
        return (s > 0).astype("float64")
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def backtest(signal, next_ret, *, mode: Mode = "long_short", cost_bps: float = 5.0) -> pd.DataFrame:
    """Day-by-day ledger (N, 5): position, turnover, gross, cost, net (all simple returns)."""
    if cost_bps < 0:
        raise ValueError("cost_bps must be >= 0")
    frame = _aligned(signal, next_ret)
    pos = positions_from_signal(frame["signal"].to_numpy(), mode)
    turnover = np.abs(np.diff(pos, prepend=0.0))
    gross = pos * np.expm1(frame["next_ret"].to_numpy())
    cost = cost_bps / 1e4 * turnover
    return pd.DataFrame(
        {"position": pos, "turnover": turnover, "gross": gross, "cost": cost, "net": gross - cost},
        index=frame.index,
    )


def strategy_returns(
    signal, next_ret, *, mode: Mode = "long_short", cost_bps: float = 5.0
) -> pd.Series:
    """Daily net simple returns of trading the forecast sign; the positions are in `backtest`."""
    return backtest(signal, next_ret, mode=mode, cost_bps=cost_bps)["net"].rename(mode)


def buy_and_hold(next_ret, cost_bps: float = 5.0) -> pd.Series:
    """Daily simple returns of holding one unit throughout, paying the entry cost once."""
    ones = pd.Series(1.0, index=next_ret.index) if isinstance(next_ret, pd.Series) else np.ones(len(next_ret))
    return strategy_returns(ones, next_ret, mode="long_flat", cost_bps=cost_bps).rename("buy_and_hold")


def equity_curve(strategy_rets) -> pd.Series:
    """Wealth after each day from 1 invested before the first day: cumprod(1 + r); (N,)."""
    r = strategy_rets if isinstance(strategy_rets, pd.Series) else pd.Series(np.asarray(strategy_rets, float))
    return (1.0 + r.astype("float64").dropna()).cumprod().rename("equity")


def max_drawdown(strategy_rets) -> float:
    """Largest peak-to-trough fall of the equity curve as a negative fraction (0 if it never falls).

    The starting wealth of 1 counts as a peak, so a loss on the first day is a drawdown.
    """
    w = equity_curve(strategy_rets).to_numpy()
    if len(w) == 0:
        return float("nan")
    peaks = np.maximum.accumulate(np.concatenate(([1.0], w)))[1:]
    return float(np.min(w / peaks - 1.0).clip(max=0.0))


def sharpe_ratio(strategy_rets, periods_per_year: int = 252) -> float:
    """Annualised Sharpe ratio mean / std * sqrt(periods), zero risk-free rate; NaN if undefined."""
    r = np.asarray(strategy_rets, dtype="float64")
    r = r[~np.isnan(r)]
    if len(r) < 2:
        return float("nan")
    sd = float(np.std(r, ddof=1))
    if sd == 0.0:
        return float("nan")
    return float(np.mean(r) / sd * np.sqrt(periods_per_year))


def trading_metrics(
    strategy_rets, positions=None, *, periods_per_year: int = 252
) -> dict[str, float]:
    """Summary of daily net returns.

    ann_return: compounded (geometric) annual growth; -1 if wealth was wiped out.
    ann_vol: std(ddof=1) * sqrt(periods). sharpe: see `sharpe_ratio`. max_drawdown: negative fraction.
    turnover: mean |pos_t - pos_{t-1}| per day (first from flat) when `positions` (N,) is given,
    e.g. ``backtest(...)["position"]``; NaN otherwise, since returns alone do not reveal trades.
    """
    r = np.asarray(strategy_rets, dtype="float64")
    r = r[~np.isnan(r)]
    n = len(r)
    out = {
        k: float("nan")
        for k in ("ann_return", "ann_vol", "sharpe", "max_drawdown", "turnover", "total_return")
    }
    out["n"] = float(n)
    if positions is not None:
        pos = np.asarray(positions, dtype="float64")
        pos = pos[~np.isnan(pos)]
        if len(pos):
            out["turnover"] = float(np.mean(np.abs(np.diff(pos, prepend=0.0))))
    if n == 0:
        return out
    wealth = float(np.prod(1.0 + r))
    out["total_return"] = wealth - 1.0
    out["ann_return"] = wealth ** (periods_per_year / n) - 1.0 if wealth > 0 else -1.0
    out["ann_vol"] = float(np.std(r, ddof=1) * np.sqrt(periods_per_year)) if n > 1 else float("nan")
    out["sharpe"] = sharpe_ratio(r, periods_per_year)
    out["max_drawdown"] = max_drawdown(r)
    return out
