"""End-to-end tests that run the real CLI in a subprocess, as a user would."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
from synth import make_ohlcv

CLI = [sys.executable, "-m", "tidewise.cli"]


def run(*args, cwd=None):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _csv(tmp_path, df, name="x.csv", **kw):
    path = tmp_path / name
    df.to_csv(path, **kw)
    return path


def _good(n=120):
    df = make_ohlcv(n).reset_index()
    df.columns = ["Date", "Open", "High", "Low", "Close", "Volume"]
    return df


def _bad_files(tmp_path):
    cases = {}
    (tmp_path / "empty.csv").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.csv", None)
    (tmp_path / "garbage.csv").write_bytes(bytes(range(256)) * 20)
    cases["garbage"] = (tmp_path / "garbage.csv", None)
    cases["missing column"] = (_csv(tmp_path, _good().drop(columns=["Low"]), "nolow.csv", index=False), "low")
    d = _good(); d["Date"] = d["Date"].astype(str); d.loc[7, "Date"] = "not-a-date"
    cases["unparsable date"] = (_csv(tmp_path, d, "baddate.csv", index=False), "row 8")
    d = _good(); d.loc[9, "Date"] = d.loc[8, "Date"]
    cases["duplicate date"] = (_csv(tmp_path, d, "dup.csv", index=False), "row 10")
    d = _good(); d.loc[11, "Close"] = np.nan
    cases["nan"] = (_csv(tmp_path, d, "nan.csv", index=False), "row 12")
    d = _good(); d.loc[12, "Volume"] = np.inf
    cases["inf"] = (_csv(tmp_path, d, "inf.csv", index=False), "row 13")
    d = _good(); d.loc[13, ["Open", "High", "Low", "Close"]] = [-1.0, -1.0, -1.0, -1.0]
    cases["non-positive"] = (_csv(tmp_path, d, "neg.csv", index=False), "row 14")
    d = _good(); d.loc[14, "High"] = d.loc[14, "Low"] * 0.5
    cases["high<low"] = (_csv(tmp_path, d, "hl.csv", index=False), "row 15")
    d = _good(); d.loc[15, "Close"] = d.loc[15, "High"] * 1.1
    cases["close outside"] = (_csv(tmp_path, d, "co.csv", index=False), "outside [low")
    d = _good(); d.loc[16, "Volume"] = -5
    cases["negative volume"] = (_csv(tmp_path, d, "nv.csv", index=False), "row 17")
    d = _good(); d["Close"] = d["Close"].astype(str); d.loc[17, "Close"] = "abc"
    cases["wrong type"] = (_csv(tmp_path, d, "type.csv", index=False), "row 18")
    cases["too few rows"] = (_csv(tmp_path, _good(300), "short.csv", index=False), "year")
    return cases


def test_every_bad_file_gives_one_line_error_and_exit_code_2(tmp_path):
    for kind, (path, must_mention) in _bad_files(tmp_path).items():
        res = run("evaluate", "--data", str(path), "-m", "always_up", "--out", str(tmp_path / "run"))
        assert res.returncode == 2, (kind, res.stdout, res.stderr)
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        assert len(lines) == 1, (kind, res.stderr)
        assert "Traceback" not in res.stderr
        assert path.name in lines[0], (kind, lines[0])
        if must_mention:
            assert must_mention.lower() in lines[0].lower(), (kind, lines[0])


def test_unknown_model_is_a_user_error():
    res = run("evaluate", "-m", "nope")
    assert res.returncode == 2 and "unknown model" in res.stderr


def test_evaluate_on_a_user_csv_with_other_spellings_writes_the_run_folder(tmp_path):
    df = make_ohlcv(1100, seed=5)
    df = df.iloc[np.r_[5:len(df), 0:5]]  # unsorted: must be sorted, and said so
    df = df.reset_index().rename(columns={"date": "timestamp", "close": "Adj Close", "volume": "Vol"})
    df["close"] = df["Adj Close"]
    path = _csv(tmp_path, df, "user.csv", index=False)
    out = tmp_path / "run"
    res = run("evaluate", "--data", str(path), "-m", "always_up,hist_mean,linear,garch",
              "--test-years", "2", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "sorted" in res.stderr
    for name in ("config.json", "metrics.json", "predictions.parquet", "leaderboard.md", "report.html"):
        assert (out / name).exists(), name
    board = json.loads((out / "metrics.json").read_text())["leaderboard"]
    assert set(board) == {"always_up", "hist_mean", "linear", "garch"}
    pred = pd.read_parquet(out / "predictions.parquet")
    assert pred["date"].dt.year.nunique() == 2
    html = (out / "report.html").read_text()
    assert "Reliability" in html and ("Cumulative P&L" in html or "Cumulative P&amp;L" in html)
    assert "<script src=\"http" not in html  # opens offline
    assert "always_up" in res.stdout and "QLIKE" in res.stdout
    again = run("report", str(out))
    assert again.returncode == 0


def test_datasets_lists_every_embedded_series():
    res = run("datasets")
    assert res.returncode == 0
    for name in ("msft", "googl", "sp500", "vix"):
        assert name in res.stdout
    assert "1986-03-13" in res.stdout and "7983" in res.stdout


def test_forecast_prints_next_day_probability_quantiles_and_volatility():
    res = run("forecast", "--data", "googl", "-m", "hist_mean,linear,garch")
    assert res.returncode == 0, res.stderr
    assert "2018-08-29" in res.stdout
    for col in ("p_up", "q10", "q90", "vol_ann", "garch"):
        assert col in res.stdout


def test_bench_writes_one_table_json_and_html(tmp_path):
    out = tmp_path / "suite"
    res = run("bench", "-m", "always_up,hist_mean,garch", "--datasets", "googl,sp500", "--test-years", "2",
              "--out", str(out))
    assert res.returncode == 0, res.stderr
    rows = json.loads((out / "suite.json").read_text())
    assert {(r["dataset"], r["model"]) for r in rows} == {
        (d, m) for d in ("googl", "sp500") for m in ("always_up", "hist_mean", "garch")}
    assert all("params" in r and "qlike" in r for r in rows)
    assert (out / "suite.html").exists() and (out / "googl" / "report.html").exists()
    assert "googl: skill" in res.stdout and "sp500: compute" in res.stdout


def test_a_context_series_that_ends_early_is_refused_not_held_flat(tmp_path):
    res = run("evaluate", "--data", "googl", "--context", "msft", "-m", "linear", "--out", str(tmp_path / "r"))
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip()
    assert len(line.splitlines()) == 1 and "msft" in line and "stale" in line and "2017-11-10" in line


def test_short_history_runs_with_a_smaller_min_train_rows(tmp_path):
    path = _csv(tmp_path, _good(3 * 252), "short3y.csv", index=False)
    res = run("evaluate", "--data", str(path), "-m", "always_up", "--test-years", "1", "--out", str(tmp_path / "a"))
    assert res.returncode == 2 and "--min-train-rows" in res.stderr
    res = run("evaluate", "--data", str(path), "-m", "always_up,garch", "--test-years", "1",
              "--min-train-rows", "200", "--out", str(tmp_path / "b"))
    assert res.returncode == 0, res.stderr
