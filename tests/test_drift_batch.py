"""Batch two-sample tests: no drift stays quiet, a shifted feature is flagged and named."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tidewise.drift import classifier_test, ks_test, mmd_test, psi
from tidewise.drift.batch import auc_null_pvalue, median_bandwidth, mmd2_unbiased, rbf_kernel

COLS = ["a", "b", "c", "d"]


def batches(seed: int, n: int = 300, shift: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(rng.normal(size=(n, len(COLS))), columns=COLS)
    cur = pd.DataFrame(rng.normal(size=(n, len(COLS))), columns=COLS)
    for col, delta in (shift or {}).items():
        cur[col] += delta
    return ref, cur


# -- KS ----------------------------------------------------------------------------------------
def test_ks_no_drift_family_wise_rate_is_controlled():
    flagged = sum(ks_test(*batches(s)).drifted for s in range(40))
    assert flagged <= 5  # Bonferroni: expected <= 0.05 * 40 = 2


def test_ks_names_the_shifted_feature_first():
    res = ks_test(*batches(0, shift={"c": 0.5}))
    assert res.drifted and res.drifted_features == ["c"]
    assert res.table.index[0] == "c"
    assert list(res.table["effect"]) == sorted(res.table["effect"], reverse=True)


def test_ks_bonferroni_multiplies_p_by_feature_count():
    ref, cur = batches(1, shift={"a": 0.2})
    raw = ks_test(ref, cur, correction="none").table["p_value"]
    adj = ks_test(ref, cur).table.loc[raw.index, "p_adjusted"]
    np.testing.assert_allclose(adj, np.minimum(1.0, raw * len(COLS)))
    with pytest.raises(ValueError):
        ks_test(ref, cur, correction="holm")


def test_missing_columns_and_arrays():
    ref, cur = batches(0)
    with pytest.raises(KeyError):
        ks_test(ref, cur.drop(columns="b"))
    res = ks_test(ref.to_numpy(), cur.to_numpy() + [0, 0, 1.0, 0])
    assert res.drifted_features == ["f2"]


# -- MMD ---------------------------------------------------------------------------------------
def naive_mmd2_unbiased(X: np.ndarray, Y: np.ndarray, bw: float) -> float:
    """Reference: Gretton et al. (2012) eq. 3 with explicit loops."""
    k = lambda u, v: math.exp(-float(np.sum((u - v) ** 2)) / (2 * bw * bw))  # noqa: E731
    m, n = len(X), len(Y)
    xx = sum(k(X[i], X[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(Y[i], Y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(X[i], Y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd_statistic_matches_the_loop_reference():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(12, 3)), rng.normal(0.5, 1.0, size=(9, 3))
    Z = np.vstack([X, Y])
    bw = median_bandwidth(Z)
    labels = np.r_[np.ones(12), np.zeros(9)]
    fast = mmd2_unbiased(rbf_kernel(Z, bw), labels)[0]
    assert fast == pytest.approx(naive_mmd2_unbiased(X, Y, bw), rel=1e-10, abs=1e-12)
    # many labellings at once agree with one at a time
    perms = np.stack([rng.permutation(labels) for _ in range(5)], axis=1)
    many = mmd2_unbiased(rbf_kernel(Z, bw), perms)
    one = [mmd2_unbiased(rbf_kernel(Z, bw), perms[:, p])[0] for p in range(5)]
    np.testing.assert_allclose(many, one, rtol=1e-12)


def test_mmd_p_value_follows_the_formula_and_is_never_zero():
    P = 99
    for shift in (0.0, 0.3, 5.0):
        res = mmd_test(*batches(2, n=120, shift={"b": shift}), n_permutations=P)
        null = res.info["null"]
        assert len(null) == P
        assert res.p_value == (1 + np.sum(null >= res.statistic)) / (1 + P)
        assert res.p_value >= 1 / (1 + P) > 0
    assert res.p_value == 1 / (1 + P)  # a huge shift: no permutation reaches it, still not 0


def test_mmd_no_drift_and_shift():
    flagged = sum(mmd_test(*batches(s, n=120), n_permutations=99).drifted for s in range(10))
    assert flagged <= 2
    res = mmd_test(*batches(3, n=200, shift={"d": 0.6}), n_permutations=99)
    assert res.drifted and res.table.index[0] == "d" and "d" in res.drifted_features
    assert res.table.loc["d", "effect"] > 5 * res.table.drop(index="d")["effect"].max()


def test_mmd_sees_a_joint_change_that_marginals_hide():
    rng = np.random.default_rng(4)
    ref = pd.DataFrame(rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], 250), columns=["x", "y"])
    cur = pd.DataFrame(rng.multivariate_normal([0, 0], [[1, -0.9], [-0.9, 1]], 250), columns=["x", "y"])
    assert not ks_test(ref, cur).drifted  # each marginal is N(0, 1) on both sides
    assert mmd_test(ref, cur, n_permutations=99).drifted


# -- classifier two-sample test ----------------------------------------------------------------
def test_auc_null_pvalue_matches_the_mann_whitney_variance():
    n0, n1 = 50, 70
    se = math.sqrt((n0 + n1 + 1) / (12 * n0 * n1))
    assert auc_null_pvalue(0.5, n0, n1) == pytest.approx(0.5)
    assert auc_null_pvalue(0.5 + 1.6448536 * se, n0, n1) == pytest.approx(0.05, abs=1e-6)


def test_classifier_no_drift_then_shift_named():
    flagged = sum(classifier_test(*batches(s, n=150), cv=3, n_repeats=1).drifted for s in range(6))
    assert flagged <= 1
    res = classifier_test(*batches(5, n=250, shift={"a": 0.8}), cv=3)
    assert res.drifted and res.statistic > 0.6
    assert res.table.index[0] == "a" and res.drifted_features == ["a"]


# -- PSI ---------------------------------------------------------------------------------------
def test_psi_hand_example():
    # ref quantile edge at 2.5: shares ref (1/2, 1/2), cur (1/4, 3/4)
    res = psi(pd.DataFrame({"x": [1.0, 2, 3, 4]}), pd.DataFrame({"x": [1.0, 3, 4, 4]}), bins=2)
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert res.table.loc["x", "statistic"] == pytest.approx(expected)  # = 0.25 ln 3 = 0.2747
    assert res.drifted  # > 0.2
    # an empty bin is floored at eps instead of giving an infinite PSI
    res = psi(pd.DataFrame({"x": [1.0, 2, 3, 4]}), pd.DataFrame({"x": [1.0, 1, 1, 1]}), bins=2, eps=1e-4)
    expected = (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert res.table.loc["x", "statistic"] == pytest.approx(expected)
    assert math.isnan(res.p_value)


def test_psi_no_drift_and_shift():
    res = psi(*batches(0, n=3000))
    assert not res.drifted and res.table["statistic"].max() < 0.05
    res = psi(*batches(0, n=3000, shift={"b": 1.0}))
    assert res.drifted_features == ["b"] and res.table.index[0] == "b"
