"""Shared fixtures: a small, valid synthetic OHLCV frame any test may use."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def synthetic_ohlcv(n: int = 60, seed: int = 0, start: str = "2015-01-02") -> pd.DataFrame:
    """(n, 5) valid daily bars on business days: a log-normal random walk with consistent bars."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0.0, 0.005, n))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.01, n))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.01, n))
    volume = rng.integers(1_000, 1_000_000, n).astype("float64")
    index = pd.bdate_range(start, periods=n, name="date")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume},
                        index=index)


@pytest.fixture
def make_ohlcv():
    """Factory: make_ohlcv(n=60, seed=0, start="2015-01-02") -> valid OHLCV frame."""
    return synthetic_ohlcv


@pytest.fixture
def ohlcv_frame() -> pd.DataFrame:
    return synthetic_ohlcv()
