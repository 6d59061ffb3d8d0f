"""Walk-forward folds by calendar block, with purge and embargo (EVALUATION.md, "Folds").

For each of the last `test_years` calendar years Y:
  test  = every row dated in Y (the model predicts each day from inputs up to that day, weights fixed)
  fit   = every row dated before Y, minus a purge of h rows at the end, because the label at row t
          looks h rows ahead and must not reach into the test block
  val   = the tail (`val_rows`) of the fit rows, used only for early stopping
  train = the fit rows before val, purged by h rows so no training label overlaps the validation tail

Embargo: an embargo of h removes training rows that FOLLOW an evaluated block (their features can
carry information from inside it). Here every fold trains only on rows before its validation tail and
test block, so the purge of h at both boundaries is the whole of it; `plan_folds` asserts that no
training or validation row lies after, or within h rows before, the test block.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from tidewise.models.base import FoldData


@dataclass(frozen=True)
class WalkForwardConfig:
    test_years: int = 6
    horizon: int = 1
    val_rows: int = 252          # one trading year of early-stopping tail
    min_train_rows: int = 500
    max_train_rows: int | None = None  # None -> expanding window (all earlier data)


class NotEnoughData(ValueError):
    """Too few rows or years for the requested folds (the CLI turns this into a one-line error)."""


def split_fit_rows(fit: np.ndarray, val_rows: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val): the last `val_rows` fit rows (at most a fifth) become the early-stopping tail,
    and the h rows before it are purged so no training label reaches into it."""
    n_val = min(val_rows, len(fit) // 5)
    val = fit[len(fit) - n_val:]
    train = fit[: max(len(fit) - n_val - horizon, 0)]
    return train, val


def plan_folds(index: pd.DatetimeIndex, config: WalkForwardConfig) -> list[dict[str, np.ndarray]]:
    """Row positions of every fold, without touching any data values."""
    h = config.horizon
    years = np.asarray(index.year)
    distinct = np.unique(years)
    if len(distinct) < config.test_years + 1:
        raise NotEnoughData(
            f"{len(distinct)} calendar year(s) of data, need at least {config.test_years + 1} "
            f"for {config.test_years} test year(s) plus training")
    folds = []
    for fold_id, year in enumerate(distinct[-config.test_years:]):
        test = np.flatnonzero(years == year)
        before = np.flatnonzero(years < year)
        fit = before[: max(len(before) - h, 0)]                      # purge before test
        if config.max_train_rows:
            fit = fit[-config.max_train_rows:]
        train, val = split_fit_rows(fit, config.val_rows, h)        # purge before val
        if len(train) < config.min_train_rows:
            raise NotEnoughData(
                f"fold for test year {year} has {len(train)} training rows after purging, "
                f"need at least {config.min_train_rows} (use fewer --test-years, a smaller "
                f"--min-train-rows, or more data)")
        assert (len(val) == 0 or val[-1] + h < test[0]) and (len(train) == 0 or train[-1] + h < val[0])
        folds.append({"fold_id": fold_id, "year": int(year), "train": train, "val": val, "test": test})
    return folds


def fold_from_rows(X: pd.DataFrame, y: pd.DataFrame, returns: pd.Series, train: np.ndarray,
                   val: np.ndarray, test: np.ndarray, horizon: int, fold_id: int = 0,
                   meta: dict | None = None) -> FoldData:
    """A FoldData over rows [0, test[-1]] whose targets are visible only on `train` and `val`.

    The one place where targets are hidden: walk-forward folds, drift-triggered refits and the
    next-day forecast all build their folds here.
    """
    end = int(test[-1]) + 1
    visible = np.zeros(end, dtype=bool)
    visible[train] = True
    visible[val] = True
    y_fold = y.iloc[:end].copy()
    y_fold.loc[~visible] = np.nan
    return FoldData(X=X.iloc[:end], y=y_fold, returns=returns.iloc[:end], train=train, val=val,
                    test=test, horizon=horizon, fold_id=fold_id, meta=dict(meta or {}))


def iter_walk_forward(X: pd.DataFrame, y: pd.DataFrame, returns: pd.Series,
                      config: WalkForwardConfig = WalkForwardConfig()) -> Iterator[FoldData]:
    """Yield one FoldData per test block. Each fold sees rows only up to the end of its test block,
    and targets only on its train and val rows."""
    if not (X.index.equals(y.index) and X.index.equals(returns.index)):
        raise ValueError("X, y and returns must share one index")
    for plan in plan_folds(pd.DatetimeIndex(X.index), config):
        yield fold_from_rows(X, y, returns, plan["train"], plan["val"], plan["test"], config.horizon,
                             plan["fold_id"], {"year": plan["year"]})


def walk_forward(X: pd.DataFrame, y: pd.DataFrame, returns: pd.Series,
                 fit_predict: Callable[[FoldData], pd.DataFrame],
                 config: WalkForwardConfig = WalkForwardConfig()) -> pd.DataFrame:
    """Collecting wrapper: run `fit_predict` on every fold and concatenate its test predictions."""
    parts = []
    for fold in iter_walk_forward(X, y, returns, config):
        pred = fit_predict(fold)
        parts.append(pred.assign(fold=fold.fold_id))
    return pd.concat(parts) if parts else pd.DataFrame()
