"""`tidewise traffic` sub-app end to end on a subsample of the embedded corpus, and the lab (marker `lab`)."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from tidewise.traffic import evaluate as E
from tidewise.traffic.app import traffic_app


def test_cli_evaluate_end_to_end_on_subsample(tmp_path, monkeypatch):
    seen = {}
    real = E._robust_features

    def spy(X, y, env, seed):  # records what the robust-feature module was fitted on
        seen["index"], seen["env"] = X.index.copy(), set(env)
        return real(X, y, env, seed)

    monkeypatch.setattr(E, "_robust_features", spy)
    monkeypatch.setattr(E, "run_evaluation", _keep_frame(E.run_evaluation, seen))
    out = tmp_path / "run"
    res = CliRunner().invoke(traffic_app, ["evaluate", "--out", str(out), "--subsample", "0.15",
                                           "--seq-epochs", "2", "--cae-epochs", "3", "--trees", "30",
                                           "--window", "60"])
    assert res.exit_code == 0, res.output
    assert "Per-flow drift detection" in res.output and "Held-out application" in res.output
    result = json.loads((out / "evaluation.json").read_text())
    steps = {r["step"] for r in result["curve"]}
    assert steps == {"p0-test", "p1", "p2"}
    models = {r["model"] for r in result["curve"]}
    assert {"lgbm-all", "lgbm-robust", "gru-sequence", "lgbm-all+retrain"} <= models
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in result["curve"])
    assert {r["detector"] for r in result["held_out_test"]} == {"cae", "conformal", "cae|conformal"}
    html = (out / "report.html").read_text()
    assert "Per-period curve" in html and "Detection timeline" in html and "Feature-drift explanation" in html
    assert len(html) > 1_000_000  # plotly.js is inlined: the report opens offline
    # robust features were fitted on period-0 training rows and their environments only
    df, split = seen["frame"], seen["split"]
    assert set(split[seen["index"]]) == {"train"}
    assert (df.loc[seen["index"], "period"] == 0).all()
    assert seen["env"] == set(df.loc[(df["period"] == 0), "environment"])
    assert set(result["robust_features"]) <= set(result["features"])


def _keep_frame(run, seen):
    def wrapped(df, manifest, cfg, log=lambda s: None):
        sub = df.sample(frac=cfg.subsample, random_state=cfg.seed) if cfg.subsample < 1 else df
        sub = sub.sort_values("first_seen_ms", kind="stable").reset_index(drop=True)
        seen["frame"] = sub
        seen["split"] = E.temporal_split(sub, cfg.train_frac, cfg.cal_frac, manifest["held_out"])
        return run(df, manifest, cfg, log)
    return wrapped


def test_cli_train_then_detect(tmp_path):
    runner = CliRunner()
    df_path = tmp_path / "flows.parquet"
    from tidewise.traffic.flows import CORPUS_DIR, load_flow_table

    df, _ = load_flow_table()
    df.sample(frac=0.15, random_state=1).sort_values("first_seen_ms").to_parquet(df_path)
    (tmp_path / "MANIFEST.json").write_text((CORPUS_DIR / "MANIFEST.json").read_text())
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    res = runner.invoke(traffic_app, ["train", "--flows", str(df_path), "--out", str(tmp_path / "model"),
                                      "--seq-epochs", "2", "--cae-epochs", "3", "--trees", "30"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(traffic_app, ["detect", "--flows", str(df_path), "--model", str(tmp_path / "model"),
                                      "--period", "2", "--window", "50", "--out", str(tmp_path / "det.parquet")])
    assert res.exit_code == 0, res.output
    import pandas as pd
    det = pd.read_parquet(tmp_path / "det.parquet")
    assert (det["period"] == 2).all() and len(det) > 100
    assert det["credibility"].between(0, 1).all() and np.isfinite(det["cae_score"]).all()
    assert "Features that moved" in res.output or not det["cae_flag"].any()


def test_lab_refuses_without_packages_and_names_the_apt_line(tmp_path, monkeypatch):
    from tidewise.traffic import netns

    real = netns.find_tool
    monkeypatch.setattr(netns, "find_tool", lambda name: None if name in ("vsftpd", "tcpdump") else real(name))
    problems = netns.missing_requirements()
    assert any("apt-get install -y" in p and "tcpdump" in p and "vsftpd" in p for p in problems)
    res = CliRunner().invoke(traffic_app, ["lab", "--out", str(tmp_path / "lab")])
    assert res.exit_code == 2
    assert "apt-get install -y" in res.output and not (tmp_path / "lab" / "period0.pcap").exists()


@pytest.mark.lab
def test_lab_runs_for_a_few_seconds(tmp_path):
    from tidewise.traffic.lab import LabConfig, run_lab
    from tidewise.traffic.netns import missing_requirements

    problems = missing_requirements()
    if problems:
        pytest.skip("; ".join(problems))
    manifest_path = run_lab(LabConfig(out=str(tmp_path), periods=2, period_seconds=6, segment_seconds=2))
    manifest = json.loads(manifest_path.read_text())
    assert [p["period"] for p in manifest["periods"]] == [0, 1]
    assert manifest["periods"][1]["drifted_apps"]
    assert all((tmp_path / p["pcap"]).stat().st_size > 0 for p in manifest["periods"])
    tag = f"tw{os.getpid() % 100000}"
    assert tag not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if importlib.util.find_spec("nfstream") is not None:
        from tidewise.traffic.flows import build_flow_table

        df = build_flow_table(tmp_path)
        assert df["app"].nunique() >= 5 and set(df["period"]) == {0, 1}

    # Ctrl-C in the middle of a period: namespaces and servers are cleaned up
    code = ("from tidewise.traffic.lab import LabConfig, run_lab; "
            f"run_lab(LabConfig(out={str(tmp_path / 'int')!r}, periods=1, period_seconds=120, segment_seconds=3))")
    proc = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:  # wait until traffic flows
        if "segment 0" in line:
            break
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"tw{proc.pid % 100000}" not in ns
