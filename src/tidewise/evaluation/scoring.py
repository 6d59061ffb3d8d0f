"""From a long prediction frame to the leaderboard: skill, significance and compute in one table.

`predictions` has one row per (model, date): the PRED_COLUMNS, the realised targets y_ret, y_dir,
y_var, next_ret (r_{t+1}, what a position taken at t earns) and the fold id.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tidewise.evaluation import metrics as M
from tidewise.evaluation import significance as S
from tidewise.evaluation import trading as T
from tidewise.models.base import QUANTILE_COLUMNS
from tidewise.models.registry import NAIVE

# Which loss each skill column is tested on, and which baselines it is tested against.
_DM_LOSSES = {
    "dir": ("p_up", "y_dir", M.log_loss_elementwise),
    "ret": ("ret", "y_ret", M.squared_error),
    "var": ("var", "y_var", M.qlike_loss),
}
_VOL_BASELINE = "garch"


def trading_signal(frame: pd.DataFrame) -> pd.Series | None:
    """Long when the model leans up: p_up - 0.5 if it has a direction, else its return forecast."""
    if frame["p_up"].notna().any():
        return frame["p_up"] - 0.5
    if frame["ret"].notna().any():
        return frame["ret"]
    return None


def hits(frame: pd.DataFrame) -> pd.Series:
    """1 where the direction call (p_up > 0.5) was right, 0 where wrong, NaN where there was no call."""
    return ((frame["p_up"] > 0.5) == (frame["y_dir"] > 0)).astype(float).where(frame["p_up"].notna())


def accuracy_vs_up_p(frame: pd.DataFrame, horizon: int, n_boot: int, seed: int) -> float:
    """One-sided p-value that accuracy beats always-up on the same days.

    h = 1: exact binomial test. h > 1: overlapping labels are autocorrelated, so the binomial's
    independence assumption fails; use a block bootstrap (block = 5h) of the daily hit difference
    (model hit - always-up hit), p = share of replicates with mean difference <= 0.
    """
    correct = hits(frame)
    if horizon == 1:
        return S.accuracy_vs_always_up(correct, frame["y_dir"])["p_value"]
    diff = (correct - (frame["y_dir"] > 0).astype(float)).dropna().to_numpy()
    if len(diff) < 2:
        return float("nan")
    from arch.bootstrap import StationaryBootstrap

    reps = StationaryBootstrap(5 * horizon, diff, seed=seed).apply(lambda d: np.atleast_1d(d.mean()), n_boot)
    return float(np.mean(reps[:, 0] <= 0.0))


def score_model(frame: pd.DataFrame, *, cost_bps: float = 5.0, n_boot: int = 300,
                seed: int = 0, horizon: int = 1) -> dict[str, float]:
    """Every skill metric for one model's test predictions (rows sorted by date)."""
    row: dict[str, float] = {}
    if frame["p_up"].notna().any():
        row.update(M.direction_metrics(frame["y_dir"], frame["p_up"]))
        row["p_acc_vs_up"] = accuracy_vs_up_p(frame, horizon, n_boot, seed)
    if frame["ret"].notna().any():
        row.update(M.return_metrics(frame["y_ret"], frame["ret"]))
        row["ic_lo"], row["ic_hi"] = S.ic_ci(frame["y_ret"], frame["ret"], n_boot=n_boot, seed=seed)
    if frame[list(QUANTILE_COLUMNS)].notna().all(axis=None):
        row.update(M.quantile_metrics(frame["y_ret"], frame[list(QUANTILE_COLUMNS)]))
    if frame["var"].notna().any():
        row.update({f"vol_{k}" if k != "qlike" else k: v
                    for k, v in M.volatility_metrics(frame["y_var"], frame["var"]).items()})
    signal = trading_signal(frame)
    if signal is not None:
        for mode, tag in (("long_short", "ls"), ("long_flat", "lf")):
            ledger = T.backtest(signal, frame["next_ret"], mode=mode, cost_bps=cost_bps)
            tm = T.trading_metrics(ledger["net"], ledger["position"])
            row[f"sharpe_{tag}"] = tm["sharpe"]
            row[f"ann_return_{tag}"] = tm["ann_return"]
            row[f"ann_vol_{tag}"] = tm["ann_vol"]
            row[f"max_dd_{tag}"] = tm["max_drawdown"]
            row[f"turnover_{tag}"] = tm["turnover"]
        lo, hi = S.sharpe_ci(T.strategy_returns(signal, frame["next_ret"], cost_bps=cost_bps),
                             n_boot=n_boot, seed=seed)
        row["sharpe_ls_lo"], row["sharpe_ls_hi"] = lo, hi
    return {k: v for k, v in row.items() if k != "n"}


def best_naive(board: pd.DataFrame, metric: str, lower_is_better: bool) -> str | None:
    """The naive baseline with the best value of `metric` (the one a model must beat)."""
    if metric not in board:
        return None
    col = board.loc[board.index.isin(NAIVE), metric].dropna()
    if col.empty:
        return None
    return str(col.idxmin() if lower_is_better else col.idxmax())


def add_significance(board: pd.DataFrame, predictions: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Diebold-Mariano p-values (one-sided: model loss lower) against the best naive baseline
    per task, and QLIKE against GARCH(1,1)-t."""
    board = board.copy()
    refs = {"dir": best_naive(board, "log_loss", True),
            "ret": "zero_return" if "zero_return" in board.index else best_naive(board, "r2_oos", False),
            "var": _VOL_BASELINE if _VOL_BASELINE in board.index else best_naive(board, "qlike", True)}
    by_model = {m: f.set_index("date") for m, f in predictions.groupby("model", sort=False)}
    for task, (col, ycol, loss_fn) in _DM_LOSSES.items():
        ref = refs[task]
        if ref is None:
            continue
        base = by_model[ref]
        board[f"dm_{task}_vs"] = ref
        for model, frame in by_model.items():
            if model == ref or frame[col].isna().all():
                continue
            joined = frame[[col, ycol]].join(base[[col]].add_suffix("_base"), how="inner").dropna()
            lm = loss_fn(joined[ycol], joined[col])
            lb = loss_fn(joined[ycol], joined[f"{col}_base"])
            board.loc[model, f"dm_{task}_p"] = S.diebold_mariano(lm, lb, h=horizon)["p_better"]
    return board


def leaderboard(predictions: pd.DataFrame, compute: dict[str, dict[str, Any]], horizon: int,
                families: dict[str, str], *, cost_bps: float = 5.0, seed: int = 0) -> pd.DataFrame:
    rows = {}
    for model, frame in predictions.groupby("model", sort=False):
        rows[model] = {"family": families.get(model, ""),
                       **score_model(frame.sort_values("date"), cost_bps=cost_bps, seed=seed,
                                     horizon=horizon),
                       **compute.get(model, {})}
    board = pd.DataFrame.from_dict(rows, orient="index")
    board.index.name = "model"
    return add_significance(board, predictions, horizon)


def buy_and_hold_row(predictions: pd.DataFrame, cost_bps: float = 5.0) -> dict[str, float]:
    one = predictions.drop_duplicates("date").sort_values("date").set_index("date")["next_ret"]
    ledger = T.backtest(pd.Series(1.0, index=one.index), one, mode="long_flat", cost_bps=cost_bps)
    tm = T.trading_metrics(ledger["net"], ledger["position"])
    return {k: tm[k] for k in ("sharpe", "ann_return", "ann_vol", "max_drawdown", "turnover")}


def per_fold_metrics(predictions: pd.DataFrame) -> pd.DataFrame:
    """Headline metric per (model, fold): accuracy, IC, QLIKE where the model provides them."""
    out = []
    for (model, fold), f in predictions.groupby(["model", "fold"], sort=False):
        row: dict[str, Any] = {"model": model, "fold": int(fold),
                               "year": int(pd.Timestamp(f["date"].iloc[0]).year)}
        if f["p_up"].notna().any():
            row["accuracy"] = float(hits(f).mean())
        if f["ret"].notna().any():
            row["ic"] = M.return_metrics(f["y_ret"], f["ret"])["ic"]
        if f["var"].notna().any():
            row["qlike"] = float(np.nanmean(M.qlike_loss(f["y_var"], f["var"])))
        out.append(row)
    return pd.DataFrame(out)
