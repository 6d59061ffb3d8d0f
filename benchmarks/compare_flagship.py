"""Flagship vs the other neural models and GARCH on the suite's test years, with Diebold-Mariano tests.

Reads the run folders written by `tidewise bench` (default benchmarks/results/suite) and, optionally,
a second suite folder whose `lean` rows replace the first's (e.g. after a validation-chosen change).
For each dataset: lean's AUC and IC vs the best other neural model, and one-sided DM p-values that
lean's loss is lower (log loss for direction, squared error for returns, QLIKE vs GARCH).

    .venv/bin/python benchmarks/compare_flagship.py [--suite DIR] [--lean-from DIR]
"""
import argparse
import json
from pathlib import Path

import pandas as pd

from tidewise.evaluation import metrics as M
from tidewise.evaluation.significance import diebold_mariano
from tidewise.models.registry import NEURAL


def load(folder: Path, dataset: str) -> pd.DataFrame:
    return pd.read_parquet(folder / dataset / "predictions.parquet").dropna(subset=["y_ret"])


def dm(a: pd.DataFrame, b: pd.DataFrame, col: str, ycol: str, loss) -> float:
    j = a.set_index("date")[[col, ycol]].join(b.set_index("date")[[col]].add_suffix("_b"), how="inner").dropna()
    return diebold_mariano(loss(j[ycol], j[col]), loss(j[ycol], j[f"{col}_b"]))["p_better"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", type=Path, default=Path("benchmarks/results/suite"))
    ap.add_argument("--lean-from", type=Path, default=None)
    ap.add_argument("--datasets", default="msft,googl,sp500")
    args = ap.parse_args()
    rows = []
    for ds in args.datasets.split(","):
        pred = load(args.suite, ds)
        if args.lean_from:
            pred = pd.concat([pred[pred.model != "lean"], load(args.lean_from, ds).query("model == 'lean'")])
        by = {m: f.sort_values("date") for m, f in pred.groupby("model")}
        score = {m: {"auc": M.direction_metrics(f.y_dir, f.p_up)["auc"], "ic": M.return_metrics(f.y_ret, f.ret)["ic"]}
                 for m, f in by.items() if m in NEURAL}
        others = {m: s for m, s in score.items() if m != "lean"}
        best_auc = max(others, key=lambda m: others[m]["auc"])
        best_ic = max(others, key=lambda m: others[m]["ic"])
        lean = by["lean"]
        rows.append({
            "dataset": ds, "lean_auc": score["lean"]["auc"], "best_other_auc": f"{best_auc} {others[best_auc]['auc']:.4f}",
            "dm_logloss_p_vs_best_auc": dm(lean, by[best_auc], "p_up", "y_dir", M.log_loss_elementwise),
            "lean_ic": score["lean"]["ic"], "best_other_ic": f"{best_ic} {others[best_ic]['ic']:.4f}",
            "dm_sqerr_p_vs_best_ic": dm(lean, by[best_ic], "ret", "y_ret", M.squared_error),
            "lean_qlike": float(M.qlike_loss(lean.y_var, lean["var"]).mean()),
            "garch_qlike": float(M.qlike_loss(by["garch"].y_var, by["garch"]["var"]).mean()),
            "dm_qlike_p_vs_garch": dm(lean, by["garch"], "var", "y_var", M.qlike_loss),
        })
    table = pd.DataFrame(rows).set_index("dataset")
    pd.set_option("display.width", 250)
    print(table.round(4).to_string())
    out = args.suite.parent / "compare_flagship.json"
    out.write_text(json.dumps(json.loads(table.to_json(orient="index")), indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
