import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from synth import make_ohlcv

from tidewise.data import asof_align
from tidewise.features import FoldScaler, build_features, build_targets


def _context(df):
    level = df["close"].rolling(3, min_periods=1).mean() * 0.5 + 1000
    return asof_align(df.index, level.rename("idx"), name="idx")


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(min_value=80, max_value=390), seed=st.integers(0, 10_000))
def test_perturbing_the_future_leaves_past_features_unchanged(cut, seed):
    df = make_ohlcv(400, seed=seed % 7)
    base = build_features(df, _context(df))
    rng = np.random.default_rng(seed)
    bumped = df.copy()
    scale = np.exp(rng.normal(0, 0.2, (len(df) - cut - 1, 1)))
    bumped.iloc[cut + 1:, :4] = bumped.iloc[cut + 1:, :4].to_numpy() * scale
    bumped.iloc[cut + 1:, 4] = bumped.iloc[cut + 1:, 4] * 3
    after = build_features(bumped, _context(bumped))
    pd.testing.assert_frame_equal(base.iloc[: cut + 1], after.iloc[: cut + 1])
    # and the perturbation is visible afterwards, so the test can fail
    assert not np.allclose(base.iloc[cut + 1:].fillna(0), after.iloc[cut + 1:].fillna(0))


def test_targets_match_definitions():
    df = make_ohlcv(50)
    for h in (1, 3):
        y = build_targets(df["close"], h)
        c = df["close"].to_numpy()
        r = np.diff(np.log(c))
        t = 10
        assert np.isclose(y["ret"].iloc[t], np.log(c[t + h] / c[t]))
        assert y["dir"].iloc[t] == float(np.log(c[t + h] / c[t]) > 0)
        assert np.isclose(y["var"].iloc[t], np.sum(r[t: t + h] ** 2))
        assert y.iloc[-h:].isna().all().all() and y.iloc[: -h].notna().all().all()


def test_features_have_expected_columns_and_no_inf():
    df = make_ohlcv(300)
    X = build_features(df, _context(df))
    for col in ("ret_lag1", "vol_21", "range", "gap", "volume_z", "mom_21", "ctx_idx_ret"):
        assert col in X
    assert np.isfinite(X.iloc[70:].to_numpy()).all()
    assert np.isclose(X["ret_lag1"].iloc[5], np.log(df["close"].iloc[5] / df["close"].iloc[4]))
    assert np.isclose(X["ret_lag2"].iloc[5], np.log(df["close"].iloc[4] / df["close"].iloc[3]))


def test_scaler_is_fitted_on_given_rows_only():
    X = pd.DataFrame({"a": np.r_[np.zeros(50), np.full(50, 100.0)]})
    s = FoldScaler().fit(X.iloc[:50] + np.arange(50)[:, None])
    assert np.isclose(s.mean_[0], 24.5)
    z = s.transform(X)
    assert np.isclose(z[-1, 0], (100 - 24.5) / s.std_[0])
