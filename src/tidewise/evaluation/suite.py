"""The embedded-suite benchmark: every model and baseline on every embedded stock, walk-forward,
one table with skill, significance against the baselines, and compute (`tidewise bench`)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

import pandas as pd

from tidewise.evaluation.pipeline import RunConfig, evaluate

SUITE_DATASETS: tuple[str, ...] = ("msft", "googl", "sp500")
SUMMARY_COLUMNS: tuple[str, ...] = (
    "family", "accuracy", "auc", "p_acc_vs_up", "dm_dir_p", "ic", "ic_lo", "ic_hi", "r2_oos", "dm_ret_p",
    "pinball", "coverage_10_90", "qlike", "dm_var_p", "sharpe_ls", "params", "flops_per_sample",
    "train_s_per_fold", "latency_ms_b1", "latency_ms_b256", "peak_mem_mb")


def run_suite(config: RunConfig, datasets: tuple[str, ...] = SUITE_DATASETS, out: str | Path = "benchmarks/results/suite",
              progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Evaluate `config.models` on each dataset; write each run folder plus suite.json / suite.html."""
    out = Path(out)
    boards = []
    for name in datasets:
        cfg = replace(config, data=name)
        result = evaluate(name, cfg, progress=(lambda m, n=name: progress(f"{n}: {m}")) if progress else None)
        result.save(out / name)
        board = result.leaderboard.reset_index()
        board.insert(0, "dataset", name)
        boards.append(board)
    table = pd.concat(boards, ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.json").write_text(json.dumps(json.loads(table.to_json(orient="records")), indent=2))
    write_suite_html(table, out / "suite.html")
    return table


def write_suite_html(table: pd.DataFrame, path: Path) -> Path:
    import plotly.express as px
    import plotly.io as pio

    from tidewise.report.tables import formatted

    parts = []
    for i, metric in enumerate(("qlike", "ic", "auc")):
        if metric not in table:
            continue
        fig = px.bar(table.dropna(subset=[metric]), x="model", y=metric, color="dataset", barmode="group",
                     title=f"{metric} by model and dataset")
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs="inline" if i == 0 else False))
    tables = "".join(
        f"<h2>{ds}</h2>" + formatted(t.set_index("model")).to_html(border=0)
        + f'<p><a href="{ds}/report.html">full report</a></p>'
        for ds, t in table.groupby("dataset", sort=False))
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>tidewise suite</title></head>"
                    f"<body><h1>tidewise embedded suite</h1>{tables}{''.join(parts)}</body></html>",
                    encoding="utf-8")
    return path
