import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from synth import make_ohlcv

from tidewise.evaluation.pipeline import RunConfig, evaluate, prepare
from tidewise.evaluation.walk_forward import iter_walk_forward
from tidewise.models.base import PRED_COLUMNS, Forecaster
from tidewise.models.registry import MODELS, NAIVE, create

CLASSICAL = ("always_up", "majority", "zero_return", "hist_mean", "momentum", "linear", "lgbm", "garch", "ewma")


@pytest.fixture(scope="module")
def fold():
    cfg = RunConfig(test_years=1, val_rows=150, min_train_rows=300)
    prep = prepare(make_ohlcv(1300, seed=3), cfg)
    return next(iter_walk_forward(prep.X, prep.y, prep.returns, cfg.walk_forward()))


@pytest.mark.parametrize("name", CLASSICAL)
def test_every_classical_model_fits_predicts_saves_and_reloads(name, fold, tmp_path):
    model = create(name, seed=0, **({"n_estimators": 40} if name == "lgbm" else {}))
    model.fit(fold)
    pred = model.predict(fold, fold.test)
    assert list(pred.columns) == list(PRED_COLUMNS) and pred.index.equals(fold.X.index[fold.test])
    for col in model.outputs:
        assert np.isfinite(pred[col]).all(), col
    for col in set(PRED_COLUMNS) - set(model.outputs):
        assert pred[col].isna().all(), col
    model.save(tmp_path / name)
    again = Forecaster.load(tmp_path / name)
    pd.testing.assert_frame_equal(pred, again.predict(fold, fold.test))


def test_save_never_pickles(fold, tmp_path):
    create("lgbm", n_estimators=20).fit(fold).save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "weights.safetensors"]


def test_naive_baselines_follow_their_rules(fold):
    y = fold.y.iloc[fold.fit_rows]
    maj = create("majority").fit(fold).predict(fold, fold.test)["p_up"]
    assert (maj > 0.5).all() == (y["dir"].mean() > 0.5)
    mom = create("momentum").fit(fold).predict(fold, fold.test)["p_up"]
    assert np.array_equal(mom.to_numpy(), (fold.returns.iloc[fold.test] > 0).astype(float).to_numpy())
    hm = create("hist_mean").fit(fold).predict(fold, fold.test)
    assert np.isclose(hm["ret"].iloc[0], y["ret"].mean()) and np.isclose(hm["var"].iloc[0], y["var"].mean())


def test_garch_forecast_uses_only_data_up_to_each_day(fold):
    model = create("garch").fit(fold)
    base = model.predict(fold, fold.test)["var"]
    k = len(fold.test) // 2
    r = fold.returns.copy()
    r.iloc[fold.test[k + 1]:] *= 5.0
    bumped = fold.__class__(**{**fold.__dict__, "returns": r})
    after = model.predict(bumped, fold.test)["var"]
    assert np.allclose(base.iloc[: k + 1], after.iloc[: k + 1])
    assert not np.allclose(base.iloc[k + 1:], after.iloc[k + 1:])


@pytest.fixture(scope="module")
def msft_run():
    cfg = RunConfig(data="msft", models=("always_up", "majority", "garch", "ewma"), test_years=6)
    return cfg, evaluate("msft", cfg)


def test_always_up_accuracy_is_share_of_up_days(msft_run):
    _, res = msft_run
    pred = res.predictions[res.predictions["model"] == "always_up"].dropna(subset=["y_ret"])
    share_up = float((pred["y_ret"] > 0).mean())
    assert res.leaderboard.loc["always_up", "accuracy"] == pytest.approx(share_up, abs=1e-12)
    assert pred["date"].dt.year.nunique() == 6


def test_garch_qlike_matches_hand_written_arch_fit(msft_run):
    cfg, res = msft_run
    prep = prepare("msft", cfg)
    losses = []
    for f in iter_walk_forward(prep.X, prep.y, prep.returns, cfg.walk_forward()):
        r = prep.returns.iloc[1:] * 100 if np.isnan(prep.returns.iloc[0]) else prep.returns * 100
        fit_end = prep.X.index[f.fit_rows.max()]
        hand = arch_model(r.loc[:fit_end], mean="Constant", vol="GARCH", p=1, q=1, dist="t").fit(disp="off")
        mu, omega, alpha, beta = hand.params[["mu", "omega", "alpha[1]", "beta[1]"]]
        full = arch_model(r.loc[: prep.X.index[f.test[-1]]], mean="Constant", vol="GARCH", p=1, q=1, dist="t")
        s2 = full.fix(hand.params).conditional_volatility ** 2
        dates = prep.X.index[f.test]
        eps = r.loc[dates] - mu
        v_next = (omega + alpha * eps ** 2 + beta * s2.loc[dates]) / 1e4   # sigma^2_{t+1 | t}
        yv = prep.y["var"].loc[dates]
        ok = yv.notna()
        losses.append(np.log(v_next[ok]) + yv[ok] / v_next[ok])
    hand_qlike = float(pd.concat(losses).mean())
    assert res.leaderboard.loc["garch", "qlike"] == pytest.approx(hand_qlike, rel=1e-6)
    assert res.leaderboard.loc["garch", "qlike"] < res.leaderboard.loc["ewma", "qlike"] + 0.5


def test_registry_names_every_naive_baseline():
    assert set(NAIVE) <= set(MODELS)


def test_every_registered_model_is_covered_by_a_shared_round_trip_test():
    from tidewise.models.registry import NEURAL

    assert set(CLASSICAL) | set(NEURAL) == set(MODELS)
