"""Drift-aware walk-forward: policies, no look-ahead, the robust feature set, the set-up comparison.

The synthetic series has a planted regime change: daily volatility jumps fourfold on CHANGE,
inside the second of two test years, so the model's absolute residuals jump too.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tidewise.evaluation.pipeline import RunConfig, prepare
from tidewise.evaluation.retraining import (
    DriftTrigger,
    FeatureMaskedForecaster,
    compare_setups,
    masked_fold,
    run_setup,
    select_robust,
)
from tidewise.evaluation.walk_forward import iter_walk_forward
from tidewise.models.registry import create

CHANGE = pd.Timestamp("2016-04-01")
CFG = RunConfig(data="synthetic", models=("linear",), test_years=2)


def regime_ohlcv(n: int = 1560, seed: int = 3, change: pd.Timestamp | None = CHANGE) -> pd.DataFrame:
    """Random walk with a weak mean-reversion signal; volatility x4 from `change` on."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2011-01-03", periods=n, name="date")
    vol = np.where(idx >= change, 0.04, 0.01) if change is not None else np.full(n, 0.01)
    r = np.empty(n)
    r[0] = 0.0
    for t in range(1, n):
        r[t] = -0.1 * r[t - 1] + vol[t] * rng.standard_normal()
    close = 100 * np.exp(np.cumsum(r))
    open_ = close * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    volume = rng.lognormal(13, 0.3, n).round()
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume},
                        index=idx)


@pytest.fixture(scope="module")
def prep():
    return prepare(regime_ohlcv(), CFG)


@pytest.fixture(scope="module")
def drift_run(prep):
    return run_setup(prep, "linear", "all", "drift", CFG)


def _drift_fits(run):
    return [f for f in run.fits if f["reason"].startswith("drift")]


def test_none_fits_once_yearly_once_per_test_year_drift_at_least_as_often(prep, drift_run):
    none = run_setup(prep, "linear", "all", "none", CFG)
    yearly = run_setup(prep, "linear", "all", "yearly", CFG)
    assert none.n_fits == 1 and none.fits[0]["reason"] == "initial"
    assert yearly.n_fits == CFG.test_years
    assert [f["first_prediction"][:4] for f in yearly.fits] == ["2015", "2016"]
    assert [f["as_of"] for f in yearly.fits] == ["2014-12-31", "2015-12-31"]
    assert drift_run.n_fits > yearly.n_fits
    # same test rows, same truth, in the pipeline's long format
    for run in (none, yearly, drift_run):
        assert run.predictions["date"].dt.year.unique().tolist() == [2015, 2016]
        assert {"p_up", "ret", "q10", "var", "y_ret", "next_ret", "model", "fold"} <= set(run.predictions)
    assert drift_run.predictions["model"].iat[0] == "linear|all|drift"
    # yearly and drift agree until the first drift refit takes effect
    first = pd.Timestamp(_drift_fits(drift_run)[0]["first_prediction"])
    a = yearly.predictions.set_index("date")["ret"]
    b = drift_run.predictions.set_index("date")["ret"]
    assert np.allclose(a[a.index < first], b[b.index < first])
    assert not np.allclose(a[a.index >= first], b[b.index >= first])


def test_none_keeps_the_first_folds_weights_frozen(prep):
    none = run_setup(prep, "linear", "all", "none", CFG)
    folds = list(iter_walk_forward(prep.X, prep.y, prep.returns, CFG.walk_forward()))
    model = create("linear").fit(folds[0])
    expected = model.predict(folds[1], folds[1].test)["ret"].to_numpy()
    got = none.predictions[none.predictions["fold"] == 1]["ret"].to_numpy()
    assert np.allclose(got, expected)
    refit = create("linear").fit(folds[1]).predict(folds[1], folds[1].test)["ret"].to_numpy()
    assert not np.allclose(got, refit)


def test_drift_refit_follows_the_planted_change_within_a_bounded_delay(prep, drift_run):
    idx = prep.X.index
    change_row = idx.searchsorted(CHANGE)
    delays = [idx.get_loc(pd.Timestamp(f["as_of"])) - change_row for f in _drift_fits(drift_run)]
    after = [d for d in delays if d >= 0]
    assert after and min(after) <= 70, delays
    for f in _drift_fits(drift_run):
        # every label used was known on the refit day: last label row + h <= as_of
        assert idx.get_loc(pd.Timestamp(f["last_label_row"])) + CFG.horizon <= idx.get_loc(pd.Timestamp(f["as_of"]))
        assert pd.Timestamp(f["first_prediction"]) > pd.Timestamp(f["as_of"])


def test_detector_is_fed_only_labels_known_on_the_day(prep, drift_run):
    idx = prep.X.index
    fed = drift_run.stream
    lag = idx.get_indexer(fed["day"]) - idx.get_indexer(fed["row"])
    assert len(fed) > 400 and (lag == CFG.horizon).all()
    assert fed["day"].is_monotonic_increasing and fed["value"].ge(0).all()
    # after each drift refit, only residuals of the new weights' predictions are fed
    for f in _drift_fits(drift_run):
        after = fed[fed["day"] > pd.Timestamp(f["as_of"])]
        assert (after["row"].iloc[0] if len(after) else pd.Timestamp.max) >= pd.Timestamp(f["first_prediction"])


def test_drift_policy_never_uses_labels_after_the_refit_day(drift_run):
    """Perturb every price after day D, the day of a drift refit. A label known on D is at most
    close_D, so the refit made on D (its weights), every earlier fit and every prediction up to D
    must be unchanged; predictions after D must change (so the perturbation bites)."""
    first = pd.Timestamp(_drift_fits(drift_run)[0]["as_of"])
    ohlcv = regime_ohlcv()
    cut = ohlcv.index.searchsorted(first)
    rng = np.random.default_rng(99)
    factor = np.ones(len(ohlcv))
    factor[cut + 1:] = np.exp(np.cumsum(rng.normal(0, 0.03, len(ohlcv) - cut - 1)))
    other = ohlcv.copy()
    other[["open", "high", "low", "close"]] = ohlcv[["open", "high", "low", "close"]].mul(factor, axis=0)
    run2 = run_setup(prepare(other, CFG), "linear", "all", "drift", CFG)
    p1, p2 = (r.predictions.set_index("date") for r in (drift_run, run2))
    before = p1.index <= first
    cols = ["p_up", "ret", "q10", "q50", "q90", "var"]
    assert np.allclose(p1.loc[before, cols], p2.loc[before, cols])
    assert not np.allclose(p1.loc[~before, cols], p2.loc[~before, cols])
    strip = lambda fits: [{k: v for k, v in f.items() if k != "seconds"} for f in fits  # noqa: E731
                          if pd.Timestamp(f["as_of"]) <= first]
    assert strip(drift_run.fits) == strip(run2.fits)
    assert strip(run2.fits)[-1]["reason"].startswith("drift")  # the refit on D itself: same weights


def test_feature_signal_names_the_features_that_drifted(prep):
    trig = DriftTrigger(signal="features", features=("vol_5", "vol_21", "mom_21", "volume_z"))
    run = run_setup(prep, "linear", "all", "drift", CFG, trig)
    fits = _drift_fits(run)
    assert fits and all(f["drifted_features"] for f in fits)
    named = {x for f in fits for x in f["drifted_features"]}
    assert named <= set(trig.features) and named & {"vol_5", "vol_21"}


def test_robust_selector_is_fitted_on_the_training_slice_only(prep):
    fold = next(iter_walk_forward(prep.X, prep.y, prep.returns, CFG.walk_forward()))
    end = fold.test[-1] + 1
    # targets unmasked on purpose: only the code's own row choice protects val and test rows
    full = masked_fold(prep, fold.train, fold.val, end, fold.test, 1, 0, fold.meta)
    full = type(full)(**{**full.__dict__, "y": prep.y.iloc[:end]})
    kept, reasons, sel = select_robust(full, n_envs=4)
    assert sel.environments_ == [0, 1, 2, 3] and set(reasons) == set(prep.X.columns)
    rng = np.random.default_rng(0)
    X2, y2 = full.X.copy(), full.y.copy()
    later = np.r_[fold.val, fold.test]
    X2.iloc[later] = rng.normal(0, 5, (len(later), X2.shape[1]))
    y2.iloc[later, 0] = 5 * X2["vol_21"].iloc[later].to_numpy()  # a strong fake signal after training
    kept2, _, sel2 = select_robust(type(full)(**{**full.__dict__, "X": X2, "y": y2}), n_envs=4)
    assert kept2 == kept and sel2.report_.equals(sel.report_)
    X3 = full.X.copy()
    X3.iloc[fold.train[:200]] = rng.normal(0, 5, (200, X3.shape[1]))
    _, _, sel3 = select_robust(type(full)(**{**full.__dict__, "X": X3}), n_envs=4)
    assert not sel3.report_["ic_mean"].equals(sel.report_["ic_mean"])


def test_robust_setup_records_kept_features_and_masks_the_model(prep):
    run = run_setup(prep, "linear", "robust", "yearly", CFG)
    for f in run.fits:
        assert 1 <= f["n_features"] == len(f["kept"]) <= prep.X.shape[1]
        assert set(f["selector"]) == set(prep.X.columns)
        assert all("kept" in f["selector"][k] or f["selector"][k].startswith("fallback") for k in f["kept"])
        # a kept feature is stable for the return or for the log-variance target
        assert all(f["selector"][k].startswith(("ret:", "fallback")) for k in f["selector"])
    fold = next(iter_walk_forward(prep.X, prep.y, prep.returns, CFG.walk_forward()))
    kept = run.fits[0]["kept"]
    model = FeatureMaskedForecaster(create("linear"), kept).fit(fold)
    assert model.base.arrays["ret_coef"].size == len(kept)
    got = run.predictions[run.predictions["fold"] == 0]["ret"].to_numpy()
    assert np.allclose(model.predict(fold, fold.test)["ret"].to_numpy(), got)
    meta, arrays = model.get_state()
    clone = FeatureMaskedForecaster(create("linear"), ["ret_lag1"])
    clone.set_state(meta, arrays)
    assert clone.columns == kept
    assert np.allclose(clone.predict(fold, fold.test)["ret"], model.predict(fold, fold.test)["ret"])


def test_compare_setups_returns_three_rows_with_dm_p_values(prep):
    table = compare_setups(None, "linear", config=CFG, prepared=prep, n_boot=30)
    assert list(table.index) == ["linear|robust|drift", "linear|all|yearly", "linear|all|none"]
    for col in ("accuracy", "auc", "ic", "r2_oos", "qlike", "n_refits", "fit_seconds"):
        assert table[col].notna().all(), col
    others = table.drop(index="linear|all|yearly")
    for col in ("dm_ret_p", "dm_dir_p", "dm_var_p"):
        assert others[col].between(0, 1).all() and np.isnan(table.loc["linear|all|yearly", col])
    assert table.loc["linear|all|none", "n_refits"] == 0
    assert table.loc["linear|all|yearly", "n_refits"] == CFG.test_years - 1
    assert table.loc["linear|robust|drift", "n_refits"] >= CFG.test_years - 1
    assert (table["fit_seconds"] > 0).all()


def test_trigger_rejects_binary_and_unknown_detectors():
    with pytest.raises(ValueError, match="detector"):
        DriftTrigger(detector="ddm")
    with pytest.raises(ValueError, match="signal"):
        DriftTrigger(signal="nope")
    with pytest.raises(ValueError, match="policy"):
        run_setup(None, "linear", "all", "weekly", CFG)
