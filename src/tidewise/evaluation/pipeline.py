"""The evaluation pipeline: data -> features -> walk-forward folds -> models -> leaderboard -> run folder.

Stages are separate functions so the CLI, the Python API and the benchmarks share them.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from tidewise.evaluation.walk_forward import WalkForwardConfig, iter_walk_forward
from tidewise.features import FeatureConfig, build_features, build_targets, log_returns
from tidewise.models.base import PRED_COLUMNS, FoldData, Forecaster
from tidewise.models.registry import create

DEFAULT_MODELS: tuple[str, ...] = (
    "always_up", "majority", "zero_return", "hist_mean", "momentum",
    "linear", "lgbm", "garch", "ewma", "mlp", "lstm", "lean",
)


@dataclass(frozen=True)
class RunConfig:
    data: str = "msft"
    models: tuple[str, ...] = DEFAULT_MODELS
    horizon: int = 1
    test_years: int = 6
    val_rows: int = 252
    min_train_rows: int = 500
    max_train_rows: int | None = None
    price: str = "adj"
    context: tuple[str, ...] = ()
    fill: str | None = None
    drop_invalid: bool = False
    cost_bps: float = 5.0
    seed: int = 0
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def walk_forward(self) -> WalkForwardConfig:
        return WalkForwardConfig(test_years=self.test_years, horizon=self.horizon,
                                 val_rows=self.val_rows, min_train_rows=self.min_train_rows,
                                 max_train_rows=self.max_train_rows)


@dataclass
class Prepared:
    ohlcv: pd.DataFrame
    X: pd.DataFrame       # (N, F) causal features, warm-up rows dropped
    y: pd.DataFrame       # (N, 3) targets; NaN on the last h rows
    returns: pd.Series    # (N,) daily log return r_t
    notes: list[str]


def prepare(source: str | Path | pd.DataFrame, config: RunConfig) -> Prepared:
    """Load and validate the data, align market context as of each day, build features/targets."""
    from tidewise.data import load_ohlcv

    notes: list[str] = []
    ohlcv = load_ohlcv(source, price=config.price, fill=config.fill,
                       drop_invalid=config.drop_invalid, notes=notes)
    context = None
    if config.context:
        context = pd.concat([_aligned_context(ohlcv, c, config.price) for c in config.context], axis=1)
    X = build_features(ohlcv, context, FeatureConfig())
    y = build_targets(ohlcv["close"], config.horizon)
    returns = log_returns(ohlcv["close"])
    complete = X.notna().all(axis=1).to_numpy()
    incomplete = np.flatnonzero(~complete)
    first = int(incomplete[-1]) + 1 if len(incomplete) else 0
    if first >= len(X):
        from tidewise.evaluation.walk_forward import NotEnoughData

        raise NotEnoughData("no row has every feature (series too short for the rolling windows)")
    if first > FeatureConfig().volume_window + 1:
        notes.append(f"features incomplete before {X.index[first].date()} (late-starting context): "
                     "evaluation uses rows from there on")
    return Prepared(ohlcv, X.iloc[first:], y.iloc[first:], returns.iloc[first:], notes)


# An as-of value older than this (calendar days) is stale: the context series has a hole or has
# ended, and carrying its last value forward would feed the model a flat, made-up series.
MAX_CONTEXT_STALENESS_DAYS = 7


def _aligned_context(ohlcv: pd.DataFrame, source: str, price: str) -> pd.DataFrame:
    from tidewise.data import DataError, asof_align, load_context

    name = Path(str(source)).stem
    aligned = asof_align(ohlcv.index, load_context(source, price=price), name=name, with_source_date=True)
    age = (pd.Series(ohlcv.index, index=ohlcv.index) - aligned["source_date"]).dt.days
    stale = np.flatnonzero((age > MAX_CONTEXT_STALENESS_DAYS).to_numpy())
    if len(stale):
        t = ohlcv.index[stale[0]]
        raise DataError(str(source), f"context has no value within {MAX_CONTEXT_STALENESS_DAYS} days of "
                        f"{t.date()} (last one {aligned['source_date'].iloc[stale[0]].date()}); "
                        f"{len(stale)} target day(s) would get a stale value. Use a context series that "
                        "covers the target's dates")
    return aligned.drop(columns="source_date")


def _next_return(prep: Prepared) -> pd.Series:
    return prep.returns.shift(-1)


def fit_predict_fold(name: str, fold: FoldData, config: RunConfig) -> tuple[Forecaster, pd.DataFrame, float]:
    model = create(name, seed=config.seed, **config.model_params.get(name, {}))
    t0 = time.perf_counter()
    model.fit(fold)
    train_s = time.perf_counter() - t0
    return model, model.predict(fold, fold.test), train_s


@dataclass
class EvaluationResult:
    config: RunConfig
    leaderboard: pd.DataFrame
    predictions: pd.DataFrame
    fold_metrics: pd.DataFrame
    buy_and_hold: dict[str, float]
    notes: list[str]
    seconds: float
    models: dict[str, Forecaster] = field(default_factory=dict)
    run_dir: Path | None = None

    def save(self, run_dir: str | Path) -> Path:
        from tidewise.report.html import write_report
        from tidewise.report.tables import leaderboard_markdown

        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(asdict(self.config), indent=2))
        metrics = {"leaderboard": json.loads(self.leaderboard.to_json(orient="index")),
                   "per_fold": json.loads(self.fold_metrics.to_json(orient="records")),
                   "buy_and_hold": self.buy_and_hold, "notes": self.notes,
                   "seconds": self.seconds}
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        self.predictions.to_parquet(run_dir / "predictions.parquet", index=False)
        (run_dir / "leaderboard.md").write_text(leaderboard_markdown(self.leaderboard))
        for name, model in self.models.items():
            model.save(run_dir / "models" / name)
        write_report(run_dir)
        self.run_dir = run_dir
        return run_dir


def evaluate(source: str | Path | pd.DataFrame, config: RunConfig,
             progress: Callable[[str], None] | None = None,
             prepared: Prepared | None = None) -> EvaluationResult:
    """Walk-forward evaluation of every model in `config.models` (see EVALUATION.md).

    `progress` is called once per (fold, model) fit and once per model's compute accounting.
    """
    from tidewise.evaluation.compute import measure_compute
    from tidewise.evaluation.scoring import buy_and_hold_row, leaderboard, per_fold_metrics

    t_start = time.perf_counter()
    prep = prepared if prepared is not None else prepare(source, config)
    next_ret = _next_return(prep)
    wf = config.walk_forward()
    parts, train_secs, last_models, families = [], {m: [] for m in config.models}, {}, {}
    last_fold: FoldData | None = None
    for fold in iter_walk_forward(prep.X, prep.y, prep.returns, wf):
        last_fold = fold
        truth = prep.y.iloc[fold.test]
        for name in config.models:
            if progress:
                progress(f"fold {fold.fold_id + 1} ({fold.meta['year']}): {name}")
            model, pred, secs = fit_predict_fold(name, fold, config)
            train_secs[name].append(secs)
            last_models[name], families[name] = model, model.family
            pred = pred.reindex(columns=list(PRED_COLUMNS))
            pred = pred.assign(y_ret=truth["ret"].to_numpy(), y_dir=truth["dir"].to_numpy(),
                               y_var=truth["var"].to_numpy(),
                               next_ret=next_ret.iloc[fold.test].to_numpy(),
                               model=name, fold=fold.fold_id)
            parts.append(pred.rename_axis("date").reset_index())
    predictions = pd.concat(parts, ignore_index=True)
    # The last h test rows have no realised target yet; they cannot be scored.
    scored = predictions.dropna(subset=["y_ret"])
    compute = {}
    for name, model in last_models.items():
        if progress:
            progress(f"compute accounting: {name}")
        compute[name] = {**measure_compute(model, last_fold),
                         "train_s_per_fold": float(np.mean(train_secs[name]))}
    board = leaderboard(scored, compute, config.horizon, families, cost_bps=config.cost_bps,
                        seed=config.seed)
    return EvaluationResult(config=config, leaderboard=board, predictions=predictions,
                            fold_metrics=per_fold_metrics(scored),
                            buy_and_hold=buy_and_hold_row(scored, config.cost_bps),
                            notes=prep.notes, seconds=time.perf_counter() - t_start,
                            models=last_models)
