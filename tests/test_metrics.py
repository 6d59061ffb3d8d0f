"""Forecast-skill metrics against hand values and independent (sklearn / numpy) computations."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from tidewise.evaluation.metrics import (
    brier_elementwise,
    direction_metrics,
    log_loss_elementwise,
    pinball_loss,
    qlike_loss,
    quantile_metrics,
    return_metrics,
    squared_error,
    volatility_metrics,
)

Y_DIR = np.array([1, 0, 1, 1, 0, 0, 1, 0])
P_UP = np.array([0.9, 0.2, 0.4, 0.7, 0.6, 0.1, 0.8, 0.5])


def test_direction_metrics_hand_example_matches_sklearn():
    m = direction_metrics(Y_DIR, P_UP)
    call = (P_UP > 0.5).astype(int)  # 1,0,0,1,1,0,1,0 -> 6 of 8 right
    assert m["accuracy"] == pytest.approx(6 / 8)
    # recall up = 3/4, recall down = 3/4
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(Y_DIR, call))
    assert m["auc"] == pytest.approx(skm.roc_auc_score(Y_DIR, P_UP))
    assert m["brier"] == pytest.approx(np.mean((P_UP - Y_DIR) ** 2))
    manual_ll = -np.mean(Y_DIR * np.log(P_UP) + (1 - Y_DIR) * np.log(1 - P_UP))
    assert m["log_loss"] == pytest.approx(manual_ll)
    assert m["n"] == 8


def test_direction_metrics_drops_nan_pairwise_and_clips():
    y = pd.Series([1.0, np.nan, 0.0, 1.0, 0.0])
    p = pd.Series([1.0, 0.3, 0.0, np.nan, 0.5])  # probabilities 0 and 1 are clipped, not inf
    m = direction_metrics(y, p)
    assert m["n"] == 3
    assert np.isfinite(m["log_loss"]) and m["log_loss"] == pytest.approx(-np.log(1 - 1e-6) * 2 / 3 + np.log(2) / 3)
    assert m["accuracy"] == pytest.approx(1.0)


def test_direction_metrics_one_class_gives_nan_auc():
    m = direction_metrics([1, 1, 1], [0.6, 0.7, 0.4])
    assert np.isnan(m["auc"])
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_elementwise_direction_losses_average_to_summaries():
    m = direction_metrics(Y_DIR, P_UP)
    assert log_loss_elementwise(Y_DIR, P_UP).mean() == pytest.approx(m["log_loss"])
    assert brier_elementwise(Y_DIR, P_UP).mean() == pytest.approx(m["brier"])
    assert np.isnan(log_loss_elementwise([1.0, np.nan], [0.5, 0.5])[1])


def test_return_metrics_r2_oos_zero_and_perfect_and_ic():
    rng = np.random.default_rng(1)
    y = rng.normal(0, 0.01, 300)
    assert return_metrics(y, np.zeros_like(y))["r2_oos"] == pytest.approx(0.0)
    perfect = return_metrics(y, y)
    assert perfect["r2_oos"] == pytest.approx(1.0)
    assert perfect["ic"] == pytest.approx(1.0) and perfect["rank_ic"] == pytest.approx(1.0)
    f = 0.3 * y + rng.normal(0, 0.01, 300)
    m = return_metrics(y, f)
    assert m["ic"] == pytest.approx(np.corrcoef(f, y)[0, 1])
    ranks = lambda a: np.argsort(np.argsort(a))  # noqa: E731  (no ties in continuous draws)
    assert m["rank_ic"] == pytest.approx(np.corrcoef(ranks(f), ranks(y))[0, 1])
    assert m["r2_oos"] == pytest.approx(1 - np.sum((y - f) ** 2) / np.sum(y**2))
    # a constant forecast has no defined IC
    assert np.isnan(return_metrics(y, np.full_like(y, 0.001))["ic"])


def test_pinball_hand_values_and_sklearn_mean():
    y = np.array([1.0, 1.0, 1.0])
    qh = np.array([0.0, 1.0, 3.0])
    # under-forecast by 1 at q=0.1 costs 0.1, exact costs 0, over-forecast by 2 costs 0.9*2
    np.testing.assert_allclose(pinball_loss(y, qh, 0.1), [0.1, 0.0, 1.8])
    np.testing.assert_allclose(pinball_loss(y, qh, 0.9), [0.9, 0.0, 0.2])
    rng = np.random.default_rng(2)
    yy, ff = rng.normal(size=50), rng.normal(size=50)
    assert pinball_loss(yy, ff, 0.3).mean() == pytest.approx(skm.mean_pinball_loss(yy, ff, alpha=0.3))
    with pytest.raises(ValueError):
        pinball_loss(y, qh, 1.0)


def test_quantile_metrics_hand_frame():
    y = pd.Series([0.0, 1.0, -2.0, 0.5, np.nan])
    q = pd.DataFrame(
        {"q10": [-1.0, -1.0, -1.0, -1.0, 0.0], "q50": [0.0, 0.0, 0.0, 0.0, 0.0], "q90": [1.0, 1.0, 1.0, 1.0, 0.0]}
    )
    m = quantile_metrics(y, q)
    assert m["n"] == 4
    # y inside [q10, q90] for 0, 1 (on the bound), 0.5; outside for -2
    assert m["coverage_10_90"] == pytest.approx(3 / 4)
    p10 = np.mean([0.1 * 1, 0.1 * 2, 0.9 * 1, 0.1 * 1.5])
    p50 = np.mean([0.0, 0.5, 1.0, 0.25])
    p90 = np.mean([0.1 * 1, 0.0, 0.1 * 3, 0.1 * 0.5])
    assert m["pinball_q10"] == pytest.approx(p10)
    assert m["pinball_q50"] == pytest.approx(p50)
    assert m["pinball_q90"] == pytest.approx(p90)
    assert m["pinball"] == pytest.approx((p10 + p50 + p90) / 3)
    with pytest.raises(KeyError):
        quantile_metrics(y, q.drop(columns="q90"))


def test_qlike_minimised_at_true_variance():
    for y in (1e-4, 4e-4, 2.5e-3):
        grid = y * np.linspace(0.2, 3.0, 281)
        loss = qlike_loss(np.full_like(grid, y), grid)
        assert grid[np.argmin(loss)] == pytest.approx(y, rel=0.011)
    # hand value and floor
    assert qlike_loss([2.0], [1.0])[0] == pytest.approx(2.0)
    assert np.isfinite(qlike_loss([1e-4], [0.0])[0])


def test_volatility_metrics_values():
    y = np.array([1e-4, 4e-4, 9e-4, 1e-4])
    v = np.array([2e-4, 3e-4, 8e-4, 1e-4])
    m = volatility_metrics(y, v)
    assert m["qlike"] == pytest.approx(np.mean(np.log(v) + y / v))
    assert m["mse_var"] == pytest.approx(np.mean((y - v) ** 2))
    assert m["corr"] == pytest.approx(np.corrcoef(v, y)[0, 1])
    assert volatility_metrics(y, y)["qlike"] < m["qlike"]


def test_squared_error_and_empty_inputs():
    np.testing.assert_allclose(squared_error([1.0, 2.0], [0.0, 4.0]), [1.0, 4.0])
    m = return_metrics([np.nan], [1.0])
    assert m["n"] == 0 and np.isnan(m["ic"]) and np.isnan(m["r2_oos"])
    with pytest.raises(ValueError):
        return_metrics([1.0, 2.0], [1.0])
