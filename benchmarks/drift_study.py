"""Drift study: retraining set-ups compared on the embedded stocks (issue 4, "Done when").

For each of msft, googl and sp500 (6 calendar test years, h = 1, the foundation's folds):
  robust|drift   robust features (RobustFeatureSelector on each fit's training slice) with
                 drift-triggered refits (a streaming detector on the standardised |residual|)
  all|yearly     all features, the foundation's yearly refit: the baseline of every DM test
  all|none       all features, fitted once before the first test year, never refit
and two ablations that separate the two changes of robust|drift: all|drift and robust|yearly.
With more than one detector, each adds its own robust|drift and all|drift rows.

Every set-up's test predictions are scored like the leaderboard; DM p-values are one-sided
(small = the set-up's loss is lower than all|yearly's) with HAC variance and the HLN correction.

    .venv/bin/python benchmarks/drift_study.py                       # linear, adwin + page_hinkley
    .venv/bin/python benchmarks/drift_study.py --model lgbm --detectors adwin
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from tidewise.evaluation.drift_analysis import jsonable
from tidewise.evaluation.pipeline import RunConfig, prepare
from tidewise.evaluation.retraining import DriftTrigger, run_setup, score_setups

DATASETS = ("msft", "googl", "sp500")
FIXED = (("all", "yearly"), ("all", "none"), ("robust", "yearly"))
DRIFT = (("robust", "drift"), ("all", "drift"))
SHOW = {"accuracy": "acc", "auc": "AUC", "ic": "IC", "r2_oos": "R2oos", "qlike": "QLIKE",
        "dm_ret_p": "DM p ret", "dm_dir_p": "DM p dir", "dm_var_p": "DM p var", "n_fits": "fits",
        "n_drift_refits": "drift refits", "fit_seconds": "fit s", "mean_features": "features"}


def study(data: str, model: str, detectors: list[str], test_years: int, n_boot: int) -> dict:
    cfg = RunConfig(data=data, models=(model,), test_years=test_years)
    prep = prepare(data, cfg)
    runs = [run_setup(prep, model, fs, pol, cfg) for fs, pol in FIXED]
    for det in detectors:
        for fs, pol in DRIFT:
            run = run_setup(prep, model, fs, pol, cfg, DriftTrigger(detector=det))
            runs.append(run if det == detectors[0] else replace(run, name=f"{run.name}[{det}]"))
    order = [f"{model}|robust|drift", f"{model}|all|yearly", f"{model}|all|none"]
    table = score_setups(runs, f"{model}|all|yearly", horizon=cfg.horizon, cost_bps=cfg.cost_bps,
                         n_boot=n_boot, seed=cfg.seed)
    table = table.loc[order + [n for n in table.index if n not in order]]
    refits = [{k: f[k] for k in ("setup", "as_of", "reason", "n_features", "kept", "drifted_features")}
              for r in runs for f in r.fits if f["reason"].startswith("drift")]
    return {"table": table, "refits": refits, "test_years": sorted(set(prep.X.index.year))[-test_years:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="linear", help="base forecaster (registry name)")
    ap.add_argument("--detectors", default="adwin,page_hinkley")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--test-years", type=int, default=6)
    ap.add_argument("--n-boot", type=int, default=300)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "drift_study.json"))
    args = ap.parse_args()
    detectors = [d for d in args.detectors.split(",") if d]
    t0 = time.perf_counter()
    results, frames = {}, []
    for data in args.datasets.split(","):
        t1 = time.perf_counter()
        res = study(data, args.model, detectors, args.test_years, args.n_boot)
        res["seconds"] = time.perf_counter() - t1
        results[data] = res
        frames.append(res["table"].assign(data=data).reset_index().set_index(["data", "setup"]))
        print(f"{data}: {res['seconds']:.1f} s", flush=True)
    table = pd.concat(frames)
    show = table[list(SHOW)].rename(columns=SHOW)
    with pd.option_context("display.width", 250, "display.max_columns", 30,
                           "display.float_format", lambda v: f"{v:.4f}"):
        print(f"\nretraining set-ups, base model {args.model}, {args.test_years} test years, h=1; "
              f"DM p one-sided vs {args.model}|all|yearly (ret: squared error, dir: log loss, var: QLIKE)")
        print(show.to_string())
    doc = {"model": args.model, "detectors": detectors, "test_years": args.test_years,
           "seconds": time.perf_counter() - t0,
           "datasets": {d: {"table": r["table"].reset_index().to_dict(orient="records"),
                            "drift_refits": r["refits"], "test_years": r["test_years"],
                            "seconds": r["seconds"]} for d, r in results.items()}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(jsonable(doc), indent=1, allow_nan=False))
    print(f"\nwrote {out} ({doc['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
