"""Drift analysis of a series (timeline, year-on-year tests, stability), its JSON, report and CLI.

The synthetic series has a planted drifting feature: the overnight gap (open vs previous close)
is tiny until CHANGE and fifteen times larger from then on (so the volatility features it feeds
move with it); intraday moves and volume keep their law.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tidewise.evaluation.drift_analysis import (
    analyze_drift,
    batch_drift_by_year,
    jsonable,
    moved_features,
    write_drift_json,
)
from tidewise.evaluation.pipeline import RunConfig
from tidewise.report.drift_section import drift_sections, write_drift_report

CHANGE = pd.Timestamp("2014-01-02")
CFG = RunConfig(data="synthetic", models=("linear",), test_years=2)


def gap_ohlcv(n: int = 1200, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2011-01-03", periods=n, name="date")
    gap = rng.normal(0, np.where(idx >= CHANGE, 0.03, 0.002))
    intraday = rng.normal(0, 0.01, n)
    close = 100 * np.exp(np.cumsum(gap + intraday))
    open_ = close * np.exp(-intraday)
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    volume = rng.lognormal(13, 0.3, n).round()
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume},
                        index=idx)


@pytest.fixture(scope="module")
def analysis():
    return analyze_drift(gap_ohlcv(), CFG)


def test_batch_tests_name_the_planted_feature_in_the_change_year_only(analysis):
    batch = {b["year"]: b for b in analysis["batch"]}
    assert sorted(batch) == [2012, 2013, 2014, 2015]
    assert "gap" in batch[2014]["moved"]  # with the volatility it feeds (vol_*, range)
    assert "volume_z" not in batch[2014]["moved"]
    for year in (2012, 2013, 2015):  # same law on both sides: the gap did not move
        assert "gap" not in batch[year]["moved"], (year, batch[year]["moved"])
    assert batch[2014]["mmd"]["p_value"] < 0.05 and "gap" in batch[2014]["ks"]["drifted"]
    assert batch[2014]["ks"]["per_feature"]["gap"] > 0.35  # two centred normals, sd ratio 15: D ~ 0.43
    table = moved_features(analysis)
    assert table.loc["gap", "years_moved"] >= 1 and table.loc["volume_z", "years_moved"] == 0


def test_feature_stream_fires_on_the_gap_soon_after_the_change(analysis):
    fired = [e for e in analysis["timeline"] if e["stream"] == "features" and "gap" in e["features"]]
    after = [pd.Timestamp(e["date"]) for e in fired if pd.Timestamp(e["date"]) >= CHANGE]
    assert after and (after[0] - CHANGE).days <= 100, after
    first = next(e for e in fired if pd.Timestamp(e["date"]) >= CHANGE)
    assert first["shift"]["gap"]["sd_ratio"] > 3 and abs(first["shift"]["gap"]["mean_sd"]) < 3
    # before the change the gap never fires
    assert not [e for e in fired if pd.Timestamp(e["date"]) < CHANGE]


def test_stability_has_one_ic_per_year_and_says_why(analysis):
    stab = analysis["stability"]
    assert stab["environments"] == [2011, 2012, 2013, 2014, 2015]
    feats = {r["feature"]: r for r in stab["features"]}
    assert set(feats) == set(analysis["features"])
    for r in feats.values():
        assert len(r["ic"]) == 5 and 0.0 <= r["sign_agreement"] <= 1.0
        assert r["reason"].startswith("kept" if r["kept"] else "dropped")
    assert stab["kept"] == [f for f in analysis["features"] if feats[f]["kept"]]


def test_json_round_trips_without_nan(analysis, tmp_path):
    text = json.dumps(analysis, allow_nan=False)
    assert json.loads(text) == analysis
    path = write_drift_json(analysis, tmp_path)
    assert json.loads(path.read_text()) == analysis
    assert jsonable({"a": np.float32(np.nan), "b": (np.int64(2), pd.Timestamp("2020-01-02"))}) == {
        "a": None, "b": [2, "2020-01-02"]}
    assert len(analysis["price"]["dates"]) == len(analysis["price"]["close"]) > 1000


def test_report_sections_and_drift_only_page(analysis, tmp_path):
    sections = drift_sections(analysis, first_plot=False)
    titles = [t for t, _ in sections]
    assert titles[0] == "Drift timeline" and "Feature stability across years" in titles
    assert all("plotly.js v" not in h for _, h in sections)  # the page inlines plotly.js once
    write_drift_json(analysis, tmp_path)
    page = write_drift_report(tmp_path).read_text()
    assert page.count("plotly.js v") == 1 and '<script src="http' not in page
    assert "gap" in page and "heatmap" in page.lower()


def test_an_evaluate_run_folder_gains_the_drift_sections(analysis, tmp_path):
    from tidewise.api import evaluate
    from tidewise.report.html import write_report

    evaluate(gap_ohlcv(), models=["always_up", "hist_mean"], test_years=2, out=tmp_path)
    write_drift_json(analysis, tmp_path)
    page = write_report(tmp_path).read_text()
    assert "Leaderboard" in page and "Drift timeline" in page and "Feature stability" in page
    assert page.count("plotly.js v") == 1


def test_batch_rejects_unknown_tests():
    X = pd.DataFrame({"a": np.arange(600.0)}, index=pd.bdate_range("2015-01-01", periods=600))
    with pytest.raises(ValueError, match="batch tests"):
        batch_drift_by_year(X, tests=("ks", "chi2"))
    out = batch_drift_by_year(X, tests=("ks",))
    assert [b["year"] for b in out] == [2016, 2017] and out[0]["moved"] == ["a"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tidewise.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_cli_drift_end_to_end_on_a_csv(tmp_path):
    csv = tmp_path / "gappy.csv"
    gap_ohlcv().rename_axis("Date").to_csv(csv)
    out = tmp_path / "run"
    res = _cli("drift", "--data", str(csv), "--test-years", "2", "--out", str(out))
    assert res.returncode == 0, res.stderr
    d = json.loads((out / "drift.json").read_text())
    assert d["setups"]["baseline"] == "linear|all|yearly"
    assert [r["setup"] for r in d["setups"]["table"]] == [
        "linear|robust|drift", "linear|all|yearly", "linear|all|none"]
    page = (out / "report.html").read_text()
    assert "Drift timeline" in page and "Retraining policies" in page and page.count("plotly.js v") == 1
    for text in ("drift timeline", "feature attributions", "retraining set-ups", "dm_ret_p", "gap"):
        assert text in res.stdout, text


def test_cli_drift_user_errors_are_one_line(tmp_path):
    res = _cli("drift", "--data", "msft", "--detector", "ddm", "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "detector" in lines[0]
    res = _cli("drift", "--data", str(tmp_path / "missing.csv"))
    assert res.returncode == 2 and "missing.csv" in res.stderr
