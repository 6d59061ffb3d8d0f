"""Backtest accounting on hand examples: positions, turnover, costs, drawdown, buy-and-hold."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tidewise.evaluation.trading import (
    backtest,
    buy_and_hold,
    equity_curve,
    max_drawdown,
    strategy_returns,
    trading_metrics,
)


def test_turnover_and_costs_hand_example():
    signal = pd.Series([0.3, 0.1, -0.2], index=pd.date_range("2024-01-01", periods=3))
    next_ret = pd.Series([0.01, -0.02, 0.03], index=signal.index)
    led = backtest(signal, next_ret, mode="long_short", cost_bps=10.0)
    np.testing.assert_array_equal(led["position"], [1.0, 1.0, -1.0])
    np.testing.assert_array_equal(led["turnover"], [1.0, 0.0, 2.0])
    np.testing.assert_allclose(led["cost"], [0.001, 0.0, 0.002])
    simple = np.exp(next_ret.to_numpy()) - 1
    expected = np.array([simple[0] - 0.001, simple[1], -simple[2] - 0.002])
    net = strategy_returns(signal, next_ret, mode="long_short", cost_bps=10.0)
    np.testing.assert_allclose(net.to_numpy(), expected)
    assert net.index.equals(signal.index)
    m = trading_metrics(net, led["position"])
    assert m["turnover"] == pytest.approx(1.0)  # (1 + 0 + 2) / 3
    assert m["total_return"] == pytest.approx(np.prod(1 + expected) - 1)


def test_zero_cost_equals_gross_and_zero_signal_is_flat():
    r = np.array([0.01, 0.02, -0.01])
    net = strategy_returns(np.array([0.0, 1.0, 0.0]), r, cost_bps=0.0)
    np.testing.assert_allclose(net.to_numpy(), [0.0, np.expm1(0.02), 0.0])


def test_long_flat_never_short():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=200)
    r = rng.normal(0, 0.01, 200)
    led = backtest(signal, r, mode="long_flat", cost_bps=5.0)
    assert set(np.unique(led["position"])) <= {0.0, 1.0}
    np.testing.assert_array_equal(led["position"], (signal > 0).astype(float))
    # on days it is flat it earns nothing but may pay for the exit trade
    flat = led["position"].to_numpy() == 0
    np.testing.assert_allclose(led["gross"].to_numpy()[flat], 0.0)
    with pytest.raises(ValueError):
        backtest(signal, r, mode="short_only")


def test_buy_and_hold_is_compounded_return_less_one_entry_cost():
    rng = np.random.default_rng(3)
    r = pd.Series(rng.normal(0.0005, 0.01, 250))
    bh = buy_and_hold(r, cost_bps=5.0)
    c = 5e-4
    assert bh.iloc[0] == pytest.approx(np.expm1(r.iloc[0]) - c)
    np.testing.assert_allclose(bh.iloc[1:].to_numpy(), np.expm1(r.iloc[1:].to_numpy()))
    total = trading_metrics(bh)["total_return"]
    # wealth: (exp(r0) - c) * exp(r1 + ... + r_{N-1})
    assert total == pytest.approx((np.exp(r.iloc[0]) - c) * np.exp(r.iloc[1:].sum()) - 1)
    assert total == pytest.approx(np.exp(r.sum()) - 1 - c * np.exp(r.iloc[1:].sum()))


def test_max_drawdown_hand_series():
    # wealth 1.1, 0.88, 0.968, 1.2584 ... peak 1.1 -> trough 0.88 is -20%
    rets = pd.Series([0.1, -0.2, 0.1, 0.3])
    assert max_drawdown(rets) == pytest.approx(-0.2)
    np.testing.assert_allclose(equity_curve(rets).to_numpy(), np.cumprod(1 + rets.to_numpy()))
    # a loss on the first day is a drawdown from the starting wealth of 1
    assert max_drawdown([-0.1, 0.05]) == pytest.approx(-0.1)
    assert max_drawdown([0.01, 0.02]) == 0.0


def test_trading_metrics_annualisation():
    rng = np.random.default_rng(5)
    r = rng.normal(0.001, 0.01, 504)
    m = trading_metrics(r, periods_per_year=252)
    assert m["ann_vol"] == pytest.approx(np.std(r, ddof=1) * np.sqrt(252))
    assert m["sharpe"] == pytest.approx(np.mean(r) / np.std(r, ddof=1) * np.sqrt(252))
    # two years of data: annual growth is the square root of total growth
    assert (1 + m["ann_return"]) ** 2 == pytest.approx(1 + m["total_return"])
    assert np.isnan(m["turnover"])  # no positions given
    assert m["max_drawdown"] <= 0


def test_nan_rows_dropped_pairwise():
    signal = np.array([1.0, np.nan, -1.0, 1.0])
    r = np.array([0.01, 0.02, np.nan, 0.03])
    led = backtest(signal, r, cost_bps=0.0)
    assert len(led) == 2
    np.testing.assert_array_equal(led.index, [0, 3])
    # the position carried across the gap is the previous one: +1 -> +1, no trade
    np.testing.assert_array_equal(led["turnover"], [1.0, 0.0])
