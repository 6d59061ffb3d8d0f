"""Market context (an index, VIX, ...) aligned to a stock's trading days with no look-ahead.

Shape legend: N target rows (trading days), M context rows, K context columns.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from tidewise.data.datasets import DATASETS, load_dataset
from tidewise.data.loading import load_ohlcv


def asof_align(target_index: pd.DatetimeIndex, context: pd.Series | pd.DataFrame, *,
               name: str | None = None, with_source_date: bool = False) -> pd.DataFrame:
    """(N, K) context as of each target day: the last observation dated <= t, never a later one.

    Calendars differ (holidays, a late-starting series), so exact-date joins would drop or leak rows;
    pandas.merge_asof(direction="backward") takes the latest earlier-or-same-day value. Days before
    the first context observation get NaN. A Series becomes one column named `name` (or its own
    name); a DataFrame's columns are prefixed with `name_` when a name is given. With
    `with_source_date`, a `source_date` column tells which context date each row came from.
    """
    target = pd.DatetimeIndex(target_index)
    if target.hasnans:
        raise ValueError("target_index contains NaT")
    if isinstance(context, pd.Series):
        frame = context.to_frame(name or (str(context.name) if context.name is not None else "context"))
    else:
        frame = context.add_prefix(f"{name}_") if name else context.copy()
    dates = pd.DatetimeIndex(frame.index)
    if dates.hasnans or dates.has_duplicates:
        raise ValueError("context index must be unique dates without NaT")
    if (target.tz is None) != (dates.tz is None):
        raise ValueError("target and context must both be tz-naive or both tz-aware")
    columns = list(frame.columns)
    right = frame.reset_index(drop=True).assign(_key=dates.as_unit("us"), source_date=dates)
    right = right.sort_values("_key", kind="stable")
    order = np.argsort(target.as_unit("us").to_numpy(), kind="stable")  # merge_asof needs sorted keys
    left = pd.DataFrame({"_key": target.as_unit("us")[order]})
    merged = pd.merge_asof(left, right, on="_key", direction="backward", allow_exact_matches=True)
    out = merged.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    out.index = target_index if isinstance(target_index, pd.DatetimeIndex) else target
    return out[columns + (["source_date"] if with_source_date else [])]


def load_context(name_or_path: str | os.PathLike, *, price: str = "adj") -> pd.Series:
    """The close (or level) series of an embedded dataset or a file, validated like any price file."""
    if isinstance(name_or_path, str) and name_or_path.strip().lower() in DATASETS \
            and not Path(name_or_path).is_file():
        key = name_or_path.strip().lower()
        df = load_dataset(key, price=price)
    else:
        path = Path(name_or_path)
        key = path.name.split(".")[0] or path.stem
        df = load_ohlcv(name_or_path, price=price, require=("close",))
    series = df["close"].rename(key)
    series.attrs = dict(df.attrs)
    return series
