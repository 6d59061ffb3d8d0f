"""Embedded datasets: small public price files shipped inside the package (see embedded/PROVENANCE.md).

Files are found with importlib.resources, so they load from an installed wheel as well as a checkout;
nothing is downloaded. Every dataset goes through the same validation as a user's file.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import pandas as pd

from tidewise.data.loading import DataError, frame_from_bytes, load_ohlcv


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    file: str                       # inside tidewise/data/embedded/
    description: str
    package: str                    # the PyPI package the file comes from
    version: str
    kind: str                       # "ohlcv" (daily bars) or "level" (one value per day)
    value_column: str | None = None  # for "level": the column holding the level, loaded as `close`
    na_values: tuple[str, ...] = ()  # extra missing-value markers in the file

    def __getitem__(self, key: str):  # mapping-style access, DATASETS["msft"]["file"]
        return getattr(self, key)


DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo("msft", "msft.csv.gz", "Microsoft daily bars, split-adjusted (1986-2017)",
                "pmdarima", "2.1.1", "ohlcv"),
    DatasetInfo("googl", "googl.csv.gz", "Alphabet class A daily bars with adjusted close (2009-2018)",
                "gym-anytrading", "2.0.0", "ohlcv"),
    DatasetInfo("sp500", "sp500.csv.gz", "S&P 500 index daily bars (1999-2018)", "arch", "8.0.0", "ohlcv"),
    # FRED-style file: "." marks market holidays, which are dropped (and noted) on load.
    DatasetInfo("vix", "vix.csv.gz", "CBOE VIX daily close level (2014-2019)", "arch", "8.0.0", "level",
                value_column="vix", na_values=(".",)),
)}


def _info(name: str) -> DatasetInfo:
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise DataError(str(name), f"unknown dataset (embedded datasets: {', '.join(DATASETS)})")
    return DATASETS[key]


def raw_dataset(name: str) -> tuple[pd.DataFrame, DatasetInfo]:
    """The embedded file as read (cells as text), before validation; a level column renamed to close."""
    info = _info(name)
    data = files("tidewise.data").joinpath("embedded", info.file).read_bytes()
    frame = frame_from_bytes(data, info.name)
    if info.value_column is not None:
        frame = frame.rename(columns={info.value_column: "close"})
    return frame, info


def load_dataset(name: str, price: str = "adj") -> pd.DataFrame:
    """A validated embedded dataset: OHLCV bars, or a frame with one `close` column for a level."""
    info = _info(name)
    if info.kind == "level":
        return load_ohlcv(info.name, price=price, require=("close",), drop_invalid=True)
    return load_ohlcv(info.name, price=price)


def list_datasets() -> pd.DataFrame:
    """One row per embedded dataset: name, description, start, end, rows, source_package."""
    rows = []
    for info in DATASETS.values():
        df = load_dataset(info.name)
        rows.append({"name": info.name, "description": info.description, "start": df.index[0],
                     "end": df.index[-1], "rows": len(df),
                     "source_package": f"{info.package} {info.version}"})
    return pd.DataFrame(rows, columns=["name", "description", "start", "end", "rows", "source_package"])
