"""Leaderboard formatting shared by the CLI (rich), the run folder (Markdown) and the HTML report."""
from __future__ import annotations

import numpy as np
import pandas as pd

# (column, header, format) in display order; columns a run lacks are skipped.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("family", "family", "s"),
    ("accuracy", "acc", ".3f"), ("balanced_accuracy", "bal_acc", ".3f"), ("auc", "AUC", ".3f"),
    ("brier", "Brier", ".4f"), ("log_loss", "logloss", ".4f"), ("p_acc_vs_up", "p(acc>up)", ".3f"),
    ("dm_dir_p", "DM p dir", ".3f"),
    ("ic", "IC", ".3f"), ("ic_lo", "IC lo", ".3f"), ("ic_hi", "IC hi", ".3f"), ("rank_ic", "RankIC", ".3f"),
    ("r2_oos", "R2oos", ".4f"), ("dm_ret_p", "DM p ret", ".3f"),
    ("pinball", "pinball", ".5f"), ("coverage_10_90", "cov80", ".3f"),
    ("qlike", "QLIKE", ".4f"), ("dm_var_p", "DM p var", ".3f"), ("vol_corr", "vol corr", ".3f"),
    ("sharpe_ls", "Sharpe L/S", ".2f"), ("sharpe_ls_lo", "SR lo", ".2f"), ("sharpe_ls_hi", "SR hi", ".2f"),
    ("ann_vol_ls", "vol L/S", ".3f"), ("sharpe_lf", "Sharpe L/F", ".2f"), ("max_dd_ls", "maxDD", ".2f"), ("turnover_ls", "turnover", ".3f"),
    ("params", "params", ",.0f"), ("flops_per_sample", "FLOPs/sample", ",.0f"),
    ("train_s_per_fold", "train s/fold", ".2f"), ("latency_ms_b1", "ms@b1", ".3f"),
    ("latency_ms_b256", "ms/sample@b256", ".4f"), ("peak_mem_mb", "peak MB", ".1f"),
)


def formatted(board: pd.DataFrame) -> pd.DataFrame:
    """String-formatted copy of the leaderboard with short headers; '-' where a model has no value."""
    out = pd.DataFrame(index=board.index)
    for col, header, fmt in COLUMNS:
        if col not in board:
            continue
        def fmt_one(v, fmt=fmt):
            if v is None or (isinstance(v, float) and not np.isfinite(v)):
                return "-"
            return format(v, fmt) if fmt != "s" else str(v)
        out[header] = board[col].map(fmt_one)
    return out


def leaderboard_markdown(board: pd.DataFrame) -> str:
    table = formatted(board).reset_index()
    header = "| " + " | ".join(table.columns) + " |"
    sep = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    refs = [f"{c}: {board[c].dropna().iloc[0]}" for c in ("dm_dir_vs", "dm_ret_vs", "dm_var_vs")
            if c in board and board[c].notna().any()]
    foot = ("\n\nDM p: one-sided Diebold-Mariano p-value that the model's loss is lower than the "
            "baseline's (" + "; ".join(refs) + "). p(acc>up): one-sided binomial test of accuracy "
            "against always-up. IC/SR lo-hi: 95% block-bootstrap intervals.\n")
    return "\n".join([header, sep, *body]) + foot


def rich_table(board: pd.DataFrame, title: str = "leaderboard", columns: tuple[str, ...] | None = None):
    from rich.table import Table

    f = formatted(board)
    if columns:
        f = f[[c for c in columns if c in f]]
    table = Table(title=title, show_lines=False, header_style="bold")
    table.add_column("model", style="bold")
    for c in f.columns:
        table.add_column(c, justify="right")
    for name, row in f.iterrows():
        table.add_row(str(name), *row.tolist())
    return table
