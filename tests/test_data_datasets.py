"""Embedded datasets, context loading, and as-of alignment that never looks ahead."""
from __future__ import annotations

import hashlib
import re
from importlib.resources import files

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidewise.data import (DATASETS, DataError, asof_align, list_datasets, load_context, load_dataset,
                           load_ohlcv)

EXPECTED = {  # name -> (rows, first date, last date), counted from the shipped files
    "msft": (7983, "1986-03-13", "2017-11-10"),
    "googl": (2335, "2009-05-22", "2018-08-29"),
    "sp500": (5031, "1999-01-04", "2018-12-31"),
    "vix": (1259, "2014-01-03", "2019-01-03"),  # 1305 lines less 46 holiday rows marked "."
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_embedded_dataset_loads_with_expected_range(name):
    rows, start, end = EXPECTED[name]
    df = load_dataset(name)
    assert len(df) == rows
    assert (df.index[0], df.index[-1]) == (pd.Timestamp(start), pd.Timestamp(end))
    assert df.index.is_monotonic_increasing and df.index.is_unique and df.index.name == "date"
    assert (df.dtypes == "float64").all() and np.isfinite(df.to_numpy()).all()
    assert df.attrs["source"] == name
    if DATASETS[name].kind == "ohlcv":
        assert list(df.columns) == ["open", "high", "low", "close", "volume"]
        assert df.attrs["notes"] == []
        assert ((df["low"] <= df["close"]) & (df["close"] <= df["high"])).all()
    else:
        assert list(df.columns) == ["close"]
        assert df.attrs["notes"] == ["dropped 46 rows with missing or infinite values "
                                     "(rows 12, 32, 76, 102, 131, ...)"]


def test_load_ohlcv_accepts_dataset_names():
    pd.testing.assert_frame_equal(load_ohlcv("googl"), load_dataset("googl"))
    raw = load_ohlcv("googl", price="raw")
    assert len(raw) == EXPECTED["googl"][0]
    assert "load_context('vix')" in str(pytest.raises(DataError, load_ohlcv, "vix").value)
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("nope")


def test_list_datasets_matches_loaded_data():
    table = list_datasets()
    assert list(table.columns) == ["name", "description", "start", "end", "rows", "source_package"]
    assert list(table["name"]) == list(DATASETS)
    for row in table.itertuples():
        rows, start, end = EXPECTED[row.name]
        assert (row.rows, row.start, row.end) == (rows, pd.Timestamp(start), pd.Timestamp(end))
        info = DATASETS[row.name]
        assert row.source_package == f"{info.package} {info.version}" == f"{info['package']} {info['version']}"


def test_embedded_files_match_provenance_hashes():
    root = files("tidewise.data").joinpath("embedded")
    table = root.joinpath("PROVENANCE.md").read_text()
    for info in DATASETS.values():
        digest = hashlib.sha256(root.joinpath(info.file).read_bytes()).hexdigest()
        assert re.search(rf"\| {re.escape(info.file)} \|.*\| {digest} \|", table), info.file


# ------------------------------------------------------------------------------------- context
def brute_force_asof(target: pd.DatetimeIndex, context: pd.Series) -> tuple[np.ndarray, list]:
    """Reference: for each t, scan every context date for the latest one <= t."""
    values, sources = [], []
    for t in target:
        earlier = context.index[context.index <= t]
        sources.append(earlier.max() if len(earlier) else pd.NaT)
        values.append(context[earlier.max()] if len(earlier) else np.nan)
    return np.array(values, dtype=float), sources


def test_asof_align_with_offset_calendar_takes_the_previous_value():
    target = pd.bdate_range("2020-01-06", periods=10)
    # The context is stamped one day after each target day: a same-index join would read tomorrow.
    context = pd.Series(np.arange(10.0), index=target + pd.Timedelta(days=1), name="ctx")
    out = asof_align(target, context, with_source_date=True)
    assert list(out.columns) == ["ctx", "source_date"] and out.index.equals(target)
    assert np.isnan(out["ctx"].iloc[0])  # nothing known yet on the first day
    for t, row in out.iloc[1:].iterrows():
        assert row["source_date"] <= t
    # Monday's value comes from the context dated the previous Saturday (Friday's stamp + 1 day).
    np.testing.assert_array_equal(out["ctx"].to_numpy()[1:], np.arange(9.0))
    same_day = asof_align(target, context.set_axis(target), name="same")
    np.testing.assert_array_equal(same_day["same"].to_numpy(), np.arange(10.0))


def test_asof_align_keeps_target_order_and_frames():
    target = pd.DatetimeIndex(["2020-01-10", "2020-01-02", "2020-01-06"])
    context = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]},
                           index=pd.DatetimeIndex(["2020-01-07", "2020-01-01"]))
    out = asof_align(target, context, name="idx")
    assert list(out.columns) == ["idx_a", "idx_b"] and out.index.equals(target)
    assert out["idx_a"].tolist() == [1.0, 2.0, 2.0]
    with pytest.raises(ValueError):
        asof_align(target, pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2020-01-01"] * 2)))


dates = st.lists(st.integers(0, 400), min_size=1, max_size=40, unique=True).map(
    lambda days: pd.DatetimeIndex(pd.Timestamp("2019-01-01") + pd.to_timedelta(days, unit="D")))


@settings(max_examples=50, deadline=None)
@given(target=dates, context_dates=dates)
def test_property_asof_never_uses_a_later_context_value(target, context_dates):
    context = pd.Series(np.random.default_rng(0).normal(size=len(context_dates)), index=context_dates)
    out = asof_align(target, context, name="c", with_source_date=True)
    expected_values, expected_sources = brute_force_asof(target, context)
    known = out["source_date"].notna().to_numpy()
    assert (out["source_date"][known] <= out.index[known]).all()
    np.testing.assert_array_equal(out["c"].to_numpy(), expected_values)
    expected = pd.Series(pd.DatetimeIndex(expected_sources).as_unit("us"), name="source_date")
    pd.testing.assert_series_equal(out["source_date"].reset_index(drop=True), expected)


def test_load_context_from_dataset_and_file(tmp_path):
    vix = load_context("vix")
    assert vix.name == "vix" and len(vix) == EXPECTED["vix"][0] and vix.attrs["source"] == "vix"
    sp = load_context("sp500")
    pd.testing.assert_series_equal(sp, load_dataset("sp500")["close"].rename("sp500"))
    path = tmp_path / "rates.csv.gz"
    pd.DataFrame({"Date": ["2020-01-03", "2020-01-02"], "Close": [1.5, 1.25]}).to_csv(path, index=False)
    rates = load_context(path)
    assert rates.name == "rates" and rates.tolist() == [1.25, 1.5]
    assert rates.attrs["notes"] == ["sorted 2 out-of-order rows"]
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Close\n2020-01-02,-1\n")
    with pytest.raises(DataError, match=r"bad\.csv: row 1 \(2020-01-02\), column 'Close': non-positive"):
        load_context(bad)


def test_context_aligned_to_stock_has_no_look_ahead():
    stock, vix = load_dataset("msft"), load_context("vix")
    out = asof_align(stock.index, vix, with_source_date=True)
    known = out["source_date"].notna()
    assert (out.loc[known, "source_date"] <= out.index[known]).all()
    assert out["vix"].loc["2014-01-03":].notna().all() and out["vix"].loc[:"2014-01-02"].isna().all()
