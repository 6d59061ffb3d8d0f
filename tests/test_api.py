import pandas as pd
from synth import make_ohlcv

import tidewise


def test_python_api_mirrors_the_cli(tmp_path):
    df = make_ohlcv(1300, seed=11)
    res = tidewise.evaluate(df, models=["always_up", "hist_mean", "garch"], test_years=2, out=tmp_path / "run")
    assert isinstance(res.leaderboard, pd.DataFrame)
    assert list(res.leaderboard.index) == ["always_up", "hist_mean", "garch"]
    up_share = (res.predictions.query("model == 'always_up'").dropna(subset=["y_ret"])["y_ret"] > 0).mean()
    assert res.leaderboard.loc["always_up", "accuracy"] == up_share
    assert (tmp_path / "run" / "report.html").exists()
    fc = tidewise.forecast(df, models=["hist_mean", "garch"])
    assert fc.attrs["as_of"] == str(df.index[-1].date())
    assert fc.loc["garch", "var"] > 0 and 0 <= fc.loc["hist_mean", "p_up"] <= 1
    assert fc.loc["hist_mean", "q10"] < fc.loc["hist_mean", "q90"]


def test_context_series_is_aligned_as_of_each_day():
    res = tidewise.evaluate("googl", models=["linear"], test_years=2, context="sp500")
    assert res.leaderboard.loc["linear", "auc"] == res.leaderboard.loc["linear", "auc"]  # scored, not NaN
    from tidewise.evaluation.pipeline import RunConfig, prepare

    prep = prepare("googl", RunConfig(context=("sp500",)))
    assert {"ctx_sp500_ret", "ctx_sp500_mom_21", "ctx_sp500_vol_21"} <= set(prep.X.columns)
    assert prep.X.notna().all().all()


def test_models_may_be_a_comma_separated_string_and_h_gt_1_uses_a_block_bootstrap_accuracy_test():
    df = make_ohlcv(1300, seed=12)
    res = tidewise.evaluate(df, models="always_up,hist_mean", test_years=1, horizon=5)
    assert list(res.leaderboard.index) == ["always_up", "hist_mean"]
    # always-up against itself: every bootstrap replicate has difference 0, so p = 1 exactly
    assert res.leaderboard.loc["always_up", "p_acc_vs_up"] == 1.0
    assert 0.0 <= res.leaderboard.loc["hist_mean", "p_acc_vs_up"] <= 1.0
    assert "ann_vol_ls" in res.leaderboard and res.buy_and_hold["ann_vol"] > 0
