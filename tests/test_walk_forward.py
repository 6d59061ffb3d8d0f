import numpy as np
import pandas as pd
import pytest
from synth import make_ohlcv

from tidewise.evaluation.walk_forward import NotEnoughData, WalkForwardConfig, iter_walk_forward, plan_folds, walk_forward
from tidewise.features import build_features, build_targets, log_returns


def _prep(n=2600, h=1):
    df = make_ohlcv(n)
    X = build_features(df).iloc[70:]
    y = build_targets(df["close"], h).iloc[70:]
    r = log_returns(df["close"]).iloc[70:]
    return X, y, r


@pytest.mark.parametrize("h", [1, 5])
def test_folds_are_calendar_blocks_purged_and_hide_future_labels(h):
    X, y, r = _prep(h=h)
    cfg = WalkForwardConfig(test_years=3, horizon=h, val_rows=100, min_train_rows=200)
    folds = list(iter_walk_forward(X, y, r, cfg))
    years = sorted(set(X.index.year))[-3:]
    assert [f.meta["year"] for f in folds] == years
    for f in folds:
        test_dates = X.index[f.test]
        assert set(test_dates.year) == {f.meta["year"]}
        assert len(f.test) == (X.index.year == f.meta["year"]).sum()
        # purge: h rows between train|val and val|test, nothing after
        assert f.train[-1] + h < f.val[0] and f.val[-1] + h < f.test[0]
        assert f.val[-1] == f.test[0] - h - 1 and f.train[-1] == f.val[0] - h - 1
        assert len(f.val) == 100
        # no row after the test block is visible, and labels outside train/val are hidden
        assert len(f.X) == f.test[-1] + 1
        visible = np.union1d(f.train, f.val)
        hidden = np.setdiff1d(np.arange(len(f.y)), visible)
        assert f.y.iloc[hidden].isna().all().all()
        assert f.y.iloc[f.train].notna().all().all()
        # the label of the last training row does not reach the validation tail
        assert X.index[f.train[-1] + h] < X.index[f.val[0]]


def test_collecting_wrapper_concatenates_fold_predictions():
    X, y, r = _prep()
    cfg = WalkForwardConfig(test_years=2, val_rows=50, min_train_rows=200)
    out = walk_forward(X, y, r, lambda f: pd.DataFrame({"n": len(f.train)}, index=f.X.index[f.test]), cfg)
    assert sorted(out["fold"].unique()) == [0, 1]
    assert len(out) == sum(len(p["test"]) for p in plan_folds(X.index, cfg))
    assert out.index.is_monotonic_increasing


def test_too_few_rows_or_years_raise():
    X, y, r = _prep(n=600)
    with pytest.raises(NotEnoughData, match="calendar year"):
        list(iter_walk_forward(X, y, r, WalkForwardConfig(test_years=6)))
    with pytest.raises(NotEnoughData, match="training rows"):
        list(iter_walk_forward(X, y, r, WalkForwardConfig(test_years=2, min_train_rows=5000)))
