"""Tomorrow's forecast: fit on all labelled history, predict from the latest row."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tidewise.evaluation.pipeline import RunConfig, prepare
from tidewise.evaluation.walk_forward import fold_from_rows, split_fit_rows
from tidewise.models.base import PRED_COLUMNS, FoldData
from tidewise.models.registry import create


def forecast_fold(X: pd.DataFrame, y: pd.DataFrame, returns: pd.Series, horizon: int,
                  val_rows: int) -> FoldData:
    """Train on every row whose label is known (purged before a validation tail), predict the last row."""
    train, val = split_fit_rows(np.flatnonzero(y["ret"].notna().to_numpy()), val_rows, horizon)
    return fold_from_rows(X, y, returns, train, val, np.array([len(X) - 1]), horizon, 0,
                          {"purpose": "forecast"})


def forecast(source: str | Path | pd.DataFrame, config: RunConfig) -> pd.DataFrame:
    """One row per model: the next trading day's direction probability, return quantiles and
    variance, made from the latest row of `source`."""
    prep = prepare(source, config)
    fold = forecast_fold(prep.X, prep.y, prep.returns, config.horizon, config.val_rows)
    rows = []
    for name in config.models:
        model = create(name, seed=config.seed, **config.model_params.get(name, {})).fit(fold)
        pred = model.predict(fold, fold.test).reindex(columns=list(PRED_COLUMNS))
        rows.append(pred.iloc[0].rename(name))
    out = pd.DataFrame(rows)
    out.index.name = "model"
    out["vol_ann"] = np.sqrt(out["var"] / config.horizon * 252)
    out.attrs["as_of"] = str(prep.X.index[-1].date())
    out.attrs["horizon"] = config.horizon
    out.attrs["notes"] = prep.notes
    return out
