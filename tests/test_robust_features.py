"""Robust-feature selection on simulated invariant vs spurious features, and the invariance penalties.

The simulation: y depends on invariant features the same way in every environment
(y = 0.6 inv1 - 0.4 inv2 + 0.3 inv3 + noise); spurious features are *caused by* y with an
environment-dependent coefficient (spur = a_e y + noise) that keeps its sign in the three training
environments but varies in strength, and flips sign in the test environment. Only the training
environments are shown to the selector.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Ridge

from tidewise.drift import RobustFeatureSelector, make_time_environments
from tidewise.drift.invariance import irm_penalty, per_env_losses, vrex_penalty

INVARIANT = ["inv1", "inv2", "inv3"]
SPURIOUS = ["spur1", "spur2"]
FEATURES = [*INVARIANT, *SPURIOUS, "noise"]


def simulate_regression(seed: int, n: int = 600) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    spur_coef = [(0.3, 1.5), (1.0, 0.5), (2.0, 0.2), (-1.0, -1.0)]  # last = test env, flipped
    frames = []
    for env, (a, b) in enumerate(spur_coef):
        X = rng.normal(size=(n, 3)) + rng.normal(0, 0.5, 3)  # covariate shift in the invariant inputs
        y = X @ np.array([0.6, -0.4, 0.3]) + rng.normal(size=n)
        df = pd.DataFrame(X, columns=INVARIANT)
        df["spur1"], df["spur2"] = a * y + rng.normal(size=n), b * y + rng.normal(size=n)
        df["noise"], df["y"], df["env"] = rng.normal(size=n), y, env
        frames.append(df)
    data = pd.concat(frames, ignore_index=True)
    return data[data["env"] < 3], data[data["env"] == 3]


@pytest.mark.parametrize("seed", [0, 2])
def test_selector_keeps_invariant_drops_spurious_and_wins_after_the_flip(seed):
    train, test = simulate_regression(seed)
    sel = RobustFeatureSelector(min_abs_ic=0.05).fit(train[FEATURES], train["y"], train["env"])
    assert sel.selected_features_ == INVARIANT
    assert list(sel.transform(test[FEATURES]).columns) == INVARIANT
    assert sel.support_.to_dict() == {f: f in INVARIANT for f in FEATURES}
    rep = sel.report_
    assert (rep.loc[SPURIOUS, "invariance_p"] < 1e-3).all()
    assert (rep.loc[SPURIOUS, "sign_agreement"] == 1.0).all()  # the sign alone cannot tell them apart
    assert rep.loc[SPURIOUS, "reason"].str.contains("slope differs").all()
    assert rep.loc[INVARIANT, "reason"].str.startswith("kept").all()
    for col in ("ic[0]", "sign[2]", "imp[1]", "ic_mean", "ic_std", "score", "kept"):
        assert col in rep.columns

    def r2(cols):
        pred = Ridge(alpha=1.0).fit(train[cols], train["y"]).predict(test[cols])
        return 1 - np.mean((test["y"] - pred) ** 2) / np.var(test["y"])

    r2_kept, r2_all = r2(sel.selected_features_), r2(FEATURES)
    assert r2_kept > 0.25 and r2_all < 0.0, (r2_kept, r2_all)


@pytest.mark.parametrize("method", ["ic_stability", "importance_stability", "invariance"])
def test_every_score_ranks_invariant_above_spurious(method):
    train, _ = simulate_regression(0)
    sel = RobustFeatureSelector(method=method, min_invariance_p=None, top_k=3)
    sel.fit(train[FEATURES], train["y"], train["env"])
    w = sel.weights_
    assert ((w >= 0) & (w <= 1)).all()
    assert w[INVARIANT].min() > w[SPURIOUS].max()
    assert sel.selected_features_ == INVARIANT  # top_k by score
    assert sel.report_.loc[SPURIOUS, "reason"].str.contains("top_k=3").all()


def test_noise_feature_with_split_signs_is_dropped_and_said_why():
    train, _ = simulate_regression(0)
    sel = RobustFeatureSelector(importance=False).fit(train[FEATURES], train["y"], train["env"])
    assert "imp[0]" not in sel.report_.columns
    assert not sel.support_["noise"] and "sign agrees" in sel.report_.loc["noise", "reason"]


def simulate_classification(seed: int, n: int = 600) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    W = np.array([[1.5, 0.0], [0.0, 1.5], [-1.5, -1.5]])  # (classes, invariant features)
    centres = np.array([-1.5, 0.0, 1.5])
    frames = []
    for env, a in enumerate([0.5, 1.0, 2.0, -1.0]):
        X = rng.normal(size=(n, 2))
        logits = X @ W.T
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        y = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1)
        df = pd.DataFrame(X, columns=["inv1", "inv2"])
        df["spur"] = a * centres[y] + rng.normal(size=n)
        df["noise"], df["y"], df["env"] = rng.normal(size=n), y, env
        frames.append(df)
    data = pd.concat(frames, ignore_index=True)
    return data[data["env"] < 3], data[data["env"] == 3]


def test_same_selector_works_for_multiclass_targets():
    train, test = simulate_classification(0)
    feats = ["inv1", "inv2", "spur", "noise"]
    sel = RobustFeatureSelector(task="classification", min_abs_ic=0.05)
    sel.fit(train[feats], train["y"], train["env"])
    assert sel.selected_features_ == ["inv1", "inv2"]

    def acc(cols):
        return LogisticRegression().fit(train[cols], train["y"]).score(test[cols], test["y"])

    assert acc(sel.selected_features_) > acc(feats) + 0.15


def test_fit_validates_inputs():
    train, _ = simulate_regression(0)
    with pytest.raises(ValueError):
        RobustFeatureSelector(task="ranking")
    with pytest.raises(ValueError):  # one environment cannot show instability
        RobustFeatureSelector().fit(train[FEATURES], train["y"], np.zeros(len(train)))
    with pytest.raises(RuntimeError):
        RobustFeatureSelector().transform(train[FEATURES])


def test_make_time_environments():
    labels = make_time_environments(10, 3)
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    idx = pd.date_range("2020-01-01", periods=7, freq="D")
    assert make_time_environments(idx, 2).tolist() == [0, 0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError):
        make_time_environments(idx[::-1], 2)
    with pytest.raises(ValueError):
        make_time_environments(3, 4)


# -- invariance penalties -------------------------------------------------------------------------
def test_vrex_penalty_zero_when_equal_positive_otherwise_and_differentiable():
    assert vrex_penalty(torch.full((4,), 0.7)).item() == 0.0
    losses = torch.tensor([0.2, 0.5, 1.1], requires_grad=True)
    pen = vrex_penalty(losses)
    assert pen.item() == pytest.approx(float(np.var([0.2, 0.5, 1.1])))
    pen.backward()
    assert torch.isfinite(losses.grad).all() and losses.grad.abs().sum() > 0


def test_per_env_losses_is_the_mean_per_environment():
    losses = torch.tensor([1.0, 2.0, 3.0, 5.0, 7.0])
    env = torch.tensor([2, 0, 2, 0, 5])
    assert per_env_losses(losses, env).tolist() == [3.5, 2.0, 7.0]


def test_irm_penalty_matches_the_closed_form_and_backpropagates():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    targets = torch.randn(64)
    env = torch.arange(64) % 2
    w = torch.randn(3, requires_grad=True)
    preds = x @ w
    mse = torch.nn.functional.mse_loss
    pen = irm_penalty(preds, targets, env, mse)
    # for MSE, dR_e/ds at s = 1 is mean(2 (p - t) p) over the environment
    closed = [(2 * (preds[env == e] - targets[env == e]) * preds[env == e]).mean() ** 2 for e in (0, 1)]
    assert pen.item() == pytest.approx(torch.stack(closed).mean().item(), rel=1e-5)
    assert pen.item() > 0
    pen.backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    # a perfect predictor cannot be improved by rescaling: zero penalty
    assert irm_penalty(targets.clone(), targets, env, mse).item() == pytest.approx(0.0, abs=1e-12)
    # works with logits and cross-entropy too
    logits = torch.randn(64, 3, requires_grad=True)
    labels = torch.randint(0, 3, (64,))
    ce = irm_penalty(logits, labels, env, torch.nn.functional.cross_entropy, reduction="sum")
    ce.backward()
    assert ce.item() > 0 and logits.grad.abs().sum() > 0
