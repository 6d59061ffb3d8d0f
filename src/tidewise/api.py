"""Python API mirroring the CLI: `tidewise.evaluate(...)`, `tidewise.forecast(...)`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from tidewise.evaluation.pipeline import DEFAULT_MODELS, EvaluationResult, RunConfig


def _config(data: Any, models: Iterable[str] | None, **kwargs: Any) -> RunConfig:
    name = data if isinstance(data, (str, Path)) else "<DataFrame>"
    if isinstance(models, str):  # "lgbm,garch" or "lgbm", as on the command line
        models = [m.strip() for m in models.split(",") if m.strip()]
    if "context" in kwargs and isinstance(kwargs["context"], str):
        kwargs["context"] = (kwargs["context"],)
    return RunConfig(data=str(name), models=tuple(models or DEFAULT_MODELS), **kwargs)


def evaluate(data: str | Path | pd.DataFrame = "msft", models: Iterable[str] | None = None, *,
             out: str | Path | None = None, **kwargs: Any) -> EvaluationResult:
    """Walk-forward evaluation. `data` is an embedded name, a CSV/Parquet path or an OHLCV DataFrame.

    Keyword arguments are RunConfig fields (horizon, test_years, context, price, seed, cost_bps,
    model_params, ...). Returns an EvaluationResult whose `.leaderboard` is a DataFrame; with `out`
    the run folder (config, metrics, predictions, leaderboard, report, models) is written too.

    >>> res = evaluate("msft", models=["always_up", "hist_mean"], test_years=2)  # doctest: +SKIP
    >>> res.leaderboard.loc["always_up", "accuracy"]                              # doctest: +SKIP
    """
    from tidewise.evaluation.pipeline import evaluate as _evaluate

    result = _evaluate(data, _config(data, models, **kwargs))
    if out is not None:
        result.save(out)
    return result


def forecast(data: str | Path | pd.DataFrame = "msft", models: Iterable[str] | None = None,
             **kwargs: Any) -> pd.DataFrame:
    """Next-period forecast per model (p_up, ret, q10, q50, q90, var, vol_ann) from the latest row."""
    from tidewise.evaluation.forecast import forecast as _forecast

    return _forecast(data, _config(data, models or ("hist_mean", "linear", "lgbm", "garch", "lean"), **kwargs))
