"""Diebold-Mariano, binomial test against always-up, block-bootstrap intervals."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tidewise.evaluation.significance import (
    accuracy_vs_always_up,
    block_bootstrap_ci,
    diebold_mariano,
    ic_ci,
    sharpe_ci,
)
from tidewise.evaluation.trading import sharpe_ratio


def test_dm_identical_losses_give_p_one():
    loss = np.random.default_rng(0).exponential(size=100)
    out = diebold_mariano(loss, loss.copy())
    assert out["stat"] == 0.0 and out["p_value"] == 1.0
    assert out["n"] == 100


def test_dm_h1_with_hln_is_the_one_sample_t_test():
    # For h = 1 the HLN factor sqrt((n-1)/n) turns mean / sqrt(gamma0 / n) into the t statistic.
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=60) ** 2, rng.normal(0.2, 1.0, 60) ** 2
    out = diebold_mariano(a, b, h=1)
    t = stats.ttest_1samp(a - b, 0.0)
    assert out["stat"] == pytest.approx(t.statistic)
    assert out["p_value"] == pytest.approx(t.pvalue)
    assert out["p_better"] == pytest.approx(stats.ttest_1samp(a - b, 0.0, alternative="less").pvalue)


def test_dm_hac_variance_for_h_greater_than_one():
    rng = np.random.default_rng(2)
    e = rng.normal(size=301)
    d = e[1:] + 0.8 * e[:-1] + 0.1  # MA(1) differential, as for 2-step forecasts
    n, h = len(d), 2
    u = d - d.mean()
    acov = np.correlate(u, u, mode="full")[n - 1 :] / n  # lags 0, 1, ...
    lrv = acov[0] + 2 * acov[1]
    factor = np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    expected = d.mean() / np.sqrt(lrv / n) * factor
    out = diebold_mariano(d, np.zeros(n), h=h)
    assert out["stat"] == pytest.approx(expected)
    assert out["p_value"] == pytest.approx(2 * stats.t(n - 1).sf(abs(expected)))


def test_dm_falls_back_to_positive_variance():
    # strongly negative lag-1 autocovariance makes the truncated-kernel sum negative
    rng = np.random.default_rng(3)
    d = np.tile([1.0, -1.0], 20) + rng.normal(0, 0.05, 40) + 0.05
    out = diebold_mariano(d, np.zeros_like(d), h=2)
    assert np.isfinite(out["stat"]) and 0.0 <= out["p_value"] <= 1.0


def test_dm_hln_shrinks_statistic_in_small_samples():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=15) ** 2, rng.normal(0.5, 1.0, 15) ** 2
    for h in (1, 3):
        with_hln = diebold_mariano(a, b, h=h)
        plain = diebold_mariano(a, b, h=h, hln=False)
        assert abs(with_hln["stat"]) < abs(plain["stat"])
        n = 15
        assert with_hln["stat"] / plain["stat"] == pytest.approx(np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n))
        assert with_hln["p_value"] > plain["p_value"]


def test_dm_strongly_better_model():
    rng = np.random.default_rng(5)
    y = rng.normal(size=300)
    good = (y - (y + rng.normal(0, 0.3, 300))) ** 2
    bad = (y - rng.normal(0, 1.0, 300)) ** 2
    out = diebold_mariano(good, bad)
    assert out["p_better"] < 1e-6 and out["p_value"] < 1e-6 and out["stat"] < 0
    assert diebold_mariano(bad, good)["p_better"] > 1 - 1e-6


def test_dm_size_under_the_null():
    rng = np.random.default_rng(6)
    sims, n = 300, 200
    e1, e2 = rng.normal(size=(sims, n)), rng.normal(size=(sims, n))
    rejections = sum(diebold_mariano(e1[i] ** 2, e2[i] ** 2)["p_value"] < 0.05 for i in range(sims))
    assert 0.02 <= rejections / sims <= 0.10


def test_dm_drops_nan_pairwise():
    a = np.array([1.0, np.nan, 2.0, 3.0, 0.5])
    b = np.array([0.5, 1.0, np.nan, 1.0, 0.4])
    assert diebold_mariano(a, b)["n"] == 3


def test_accuracy_vs_always_up_matches_exact_binomial():
    y = np.array([1] * 11 + [0] * 9)
    correct = np.array([True] * 14 + [False] * 6)
    out = accuracy_vs_always_up(correct, y)
    assert out["acc"] == pytest.approx(0.7) and out["base_acc"] == pytest.approx(0.55)
    by_hand = sum(math.comb(20, k) * 0.55**k * 0.45 ** (20 - k) for k in range(14, 21))
    assert out["p_value"] == pytest.approx(by_hand)
    assert out["p_value"] == pytest.approx(stats.binomtest(14, 20, 0.55, alternative="greater").pvalue)
    # a model no better than always-up is not significant
    assert accuracy_vs_always_up(np.array([True] * 11 + [False] * 9), y)["p_value"] > 0.3


def test_bootstrap_ci_of_mean_covers_truth_and_excludes_zero():
    x = np.random.default_rng(8).normal(0.5, 1.0, 500)
    lo, hi = block_bootstrap_ci(np.mean, x, block=20, n_boot=500, seed=0)
    assert lo < 0.5 < hi and lo > 0
    # with block 1 the stationary bootstrap is the iid bootstrap: width near the normal-theory 2 * 1.96 * se
    lo1, hi1 = block_bootstrap_ci(np.mean, x, block=1, n_boot=1000, seed=1)
    normal_width = 2 * stats.norm.ppf(0.975) * x.std(ddof=1) / np.sqrt(len(x))
    assert (hi1 - lo1) / normal_width == pytest.approx(1.0, abs=0.08)
    lo9, hi9 = block_bootstrap_ci(np.mean, x, block=1, n_boot=1000, seed=1, alpha=0.10)
    assert lo1 < lo9 < hi9 < hi1
    assert block_bootstrap_ci(np.mean, x, seed=0) == (lo, hi)  # deterministic under a seed
    lo_c, hi_c = block_bootstrap_ci(np.mean, x, method="circular", seed=0)
    assert lo_c < 0.5 < hi_c and lo_c > 0


def test_bootstrap_ci_coverage_is_near_nominal():
    rng = np.random.default_rng(10)
    hits = 0
    for i in range(40):
        x = rng.normal(0.5, 1.0, 300)
        lo, hi = block_bootstrap_ci(np.mean, x, block=10, n_boot=200, seed=i)
        hits += lo < 0.5 < hi
    assert 0.8 <= hits / 40 <= 1.0  # nominal 95%; slightly narrow percentile intervals are fine


def test_ic_ci_resamples_pairs_jointly():
    rng = np.random.default_rng(8)
    y = rng.normal(size=400)
    # identical series keep an IC of exactly 1 only if both are resampled with the same rows
    lo, hi = ic_ci(y, y, n_boot=200)
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    f = 0.4 * y + rng.normal(size=400)
    lo, hi = ic_ci(y, f, n_boot=300)
    point = np.corrcoef(f, y)[0, 1]
    assert lo < point < hi and lo > 0
    lo_r, hi_r = ic_ci(y, f, rank=True, n_boot=300)
    assert lo_r < stats.spearmanr(f, y).statistic < hi_r


def test_sharpe_ci_contains_point_estimate():
    r = np.random.default_rng(9).normal(0.001, 0.01, 750)
    lo, hi = sharpe_ci(r, n_boot=300)
    assert lo < sharpe_ratio(r) < hi
    assert hi - lo > 0.5  # three years of daily data cannot pin a Sharpe ratio down tightly
