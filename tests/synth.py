"""Synthetic OHLCV series for tests (deterministic, seeded)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def make_ohlcv(n: int = 1500, seed: int = 0, start: str = "2010-01-04", garch: bool = True) -> pd.DataFrame:
    """A GARCH-like random walk with consistent OHLC bars and positive volume, on business days."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(start, periods=n, name="date")
    var = np.empty(n)
    r = np.empty(n)
    var[0] = 1e-4
    for t in range(n):
        if t:
            var[t] = 2e-6 + 0.08 * r[t - 1] ** 2 + 0.9 * var[t - 1] if garch else 1e-4
        r[t] = np.sqrt(var[t]) * rng.standard_t(6) / np.sqrt(1.5) + 2e-4
    close = 100 * np.exp(np.cumsum(r))
    open_ = close * np.exp(rng.normal(0, 0.003, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.005, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.005, n)))
    volume = rng.lognormal(13, 0.4, n).round()
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=idx)
