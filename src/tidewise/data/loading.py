"""Load and validate daily OHLCV price data: one validation path, one-line errors.

Shape legend: N rows (trading days), C checked columns.

Every source (CSV, gzipped CSV, parquet, an embedded dataset, a DataFrame) becomes a raw frame that
goes through :func:`validate_ohlcv`. It returns a clean frame or raises :class:`DataError`, whose
text is one line naming the file, the data row (1-based, header excluded, with its date when known)
and the column. The only repairs are sorting out-of-order rows and those the caller asks for
(``fill``, ``drop_invalid``); each leaves a human-readable note in ``df.attrs["notes"]``.
"""
from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close")
# Headers are matched after lower-casing and removing spaces, underscores, hyphens and dots.
_ALIASES = {"date": "date", "timestamp": "date", "datetime": "date", "time": "date",
            "open": "open", "high": "high", "low": "low", "close": "close",
            "adjclose": "adj_close", "adjustedclose": "adj_close", "volume": "volume", "vol": "volume"}
_MISSING = frozenset({"", "nan", "na", "n/a", "null", "none", "#n/a"})
_REL_TOL = 1e-6  # float rounding in vendor files: close may exceed high by a hair


class DataError(ValueError):
    """A data problem, told in one line: ``source: row R (date), column 'c': problem``."""

    def __init__(self, source: str, problem: str, *, row: int | None = None,
                 date: str | None = None, column: str | None = None):
        self.source, self.problem, self.row, self.date, self.column = source, problem, row, date, column
        where = []
        if row is not None:
            where.append(f"row {row}" + (f" ({date})" if date else ""))
        if column is not None:
            where.append(f"column {column!r}")
        text = ": ".join([str(source), *([", ".join(where)] if where else []), problem])
        super().__init__(re.sub(r"\s*[\r\n\v\f]+\s*", " ", text))  # one line, whatever the parts held


def _canonical(name: object) -> str | None:
    return _ALIASES.get(re.sub(r"[\s_.\-]+", "", str(name)).lower())


def _num(value: float) -> str:
    return repr(float(value))


def _show(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------- reading
def frame_from_bytes(data: bytes, name: str, *, parquet: bool = False) -> pd.DataFrame:
    """Raw frame (all cells as read) from the bytes of a CSV, gzipped CSV or parquet file."""
    if len(data) == 0:
        raise DataError(name, "empty file (0 bytes)")
    if data[:4] == b"PAR1":
        return _read_parquet(data, name)
    if parquet:
        raise DataError(name, "not a parquet file (no PAR1 magic bytes)")
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(name, f"corrupt gzip data ({exc})") from None
        if not data.strip():
            raise DataError(name, "empty file (nothing inside the gzip)")
    return _read_csv(data, name)


def _read_csv(data: bytes, name: str) -> pd.DataFrame:
    if b"\x00" in data:
        raise DataError(name, "binary file, not CSV text (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(name, f"not UTF-8 text (undecodable byte at offset {exc.start}); "
                              "binary or garbage file?") from None
    controls = sum(ch < " " and ch not in "\t\r\n" for ch in text[:4096])
    if controls > 0.01 * min(len(text), 4096):
        raise DataError(name, "binary or garbage file, not CSV text (control characters)")
    if not text.strip():
        raise DataError(name, "empty file (only whitespace)")
    header = text.lstrip().split("\n", 1)[0]
    sep = next((s for s in (",", "\t", ";") if s in header), ",")
    try:  # every cell as text: types are checked cell by cell in validate_ohlcv
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                            na_filter=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataError(name, "empty file (no header)") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(name, f"cannot parse as CSV ({str(exc).strip()})") from None
    if len(frame) == 0:
        raise DataError(name, "no data rows (header only)")
    return frame


def _read_parquet(data: bytes, name: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(pa.BufferReader(data)).to_pandas()
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise DataError(name, f"cannot read parquet ({str(exc).strip()})") from None


def read_source(source: str | os.PathLike | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(raw frame, source name) for a path or a DataFrame. Embedded names go through datasets.py."""
    if isinstance(source, pd.DataFrame):
        return source, str(source.attrs.get("source", "<DataFrame>"))
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a path, a dataset name or a DataFrame, not {type(source).__name__}")
    name, path = os.fspath(source), Path(source)
    if not path.exists():
        from tidewise.data.datasets import DATASETS

        raise DataError(name, f"no such file (embedded datasets: {', '.join(DATASETS)})")
    if path.is_dir():
        raise DataError(name, "is a directory, not a data file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(name, f"cannot read file ({exc.strerror or exc})") from None
    return frame_from_bytes(data, name, parquet=path.suffix.lower() in (".parquet", ".pq")), name


def load_ohlcv(source: str | os.PathLike | pd.DataFrame, *, price: str = "adj", fill: str | None = None,
               drop_invalid: bool = False, notes: list[str] | None = None,
               require: Iterable[str] = OHLCV_COLUMNS, na_values: Iterable[str] = ()) -> pd.DataFrame:
    """Daily bars from a file (.csv, .csv.gz, .parquet/.pq), an embedded dataset name or a DataFrame.

    Returns (N, 5) float64 open, high, low, close, volume on a sorted, unique, tz-naive DatetimeIndex
    named "date" (only the columns present when ``require`` is narrower). ``price="adj"`` uses the
    adjusted close when the source has one; ``fill="ffill"`` forward-fills NaN/inf cells;
    ``drop_invalid`` drops failing rows instead of raising. Repairs are noted in ``attrs["notes"]``
    and appended to ``notes``. Raises :class:`DataError` (one line) for anything else.
    """
    from tidewise.data.datasets import DATASETS, raw_dataset

    if isinstance(source, str) and source.strip().lower() in DATASETS and not Path(source).is_file():
        frame, info = raw_dataset(source)
        name, na_values = info.name, (*na_values, *info.na_values)
        if info.kind != "ohlcv" and set(require) - {"close"}:
            raise DataError(name, f"a {info.kind} series, not OHLCV; load it with "
                                  f"load_context({name!r}) or load_dataset({name!r})")
    else:
        frame, name = read_source(source)
    return validate_ohlcv(frame, name, price=price, fill=fill, drop_invalid=drop_invalid,
                          notes=notes, require=require, na_values=na_values)


# -------------------------------------------------------------------------------------- validation
@dataclass
class _Table:
    """The rows under validation, as parallel arrays that shrink together when rows are dropped."""

    name: str
    drop_invalid: bool
    original: dict[str, str]                  # canonical column -> the source's spelling
    rows: np.ndarray                          # (N,) 1-based data-row numbers in the source
    dates: np.ndarray = None                  # (N,) datetime64[us], NaT where unknown
    raw: dict[str, np.ndarray] = field(default_factory=dict)     # column -> (N,) cells as read
    values: dict[str, np.ndarray] = field(default_factory=dict)  # column -> (N,) float64
    notes: list[str] = field(default_factory=list)

    def keep(self, mask: np.ndarray) -> None:
        self.rows, self.dates = self.rows[mask], self.dates[mask]
        self.raw = {c: v[mask] for c, v in self.raw.items()}
        self.values = {c: v[mask] for c, v in self.values.items()}

    def date_text(self, i: int) -> str | None:
        d = self.dates[i]
        if np.isnat(d):
            return None
        ts = pd.Timestamp(d)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()

    def fail(self, bad: np.ndarray, columns: list[str] | None, reason: str, describe) -> np.ndarray:
        """Raise at the earliest offending source row, or drop every offending row and note it.

        bad: (N,) or (N, C) mask; columns names the C columns; describe(i, j) -> problem text.
        Returns the (N,) mask of rows kept.
        """
        bad2 = bad.reshape(len(bad), -1)
        hit = np.flatnonzero(bad2.any(axis=1))
        if len(hit) == 0:
            return np.ones(len(bad2), dtype=bool)
        if self.drop_invalid:
            listed = ", ".join(str(r) for r in np.sort(self.rows[hit])[:5])
            listed += ", ..." if len(hit) > 5 else ""
            self.notes.append(f"dropped {len(hit)} row{'s' if len(hit) > 1 else ''} with {reason} "
                              f"(row{'s' if len(hit) > 1 else ''} {listed})")
            self.keep(kept := ~bad2.any(axis=1))
            return kept
        i = int(hit[np.argmin(self.rows[hit])])
        j = int(np.argmax(bad2[i]))
        more = f" (and {len(hit) - 1} more row{'s' if len(hit) > 2 else ''})" if len(hit) > 1 else ""
        column = self.original[columns[j]] if columns else None
        raise DataError(self.name, describe(i, j) + more, row=int(self.rows[i]),
                        date=self.date_text(i), column=column)


def _with_date_column(df: pd.DataFrame) -> pd.DataFrame:
    """Move a date-like index (e.g. from parquet or a user's frame) into a column."""
    if any(_canonical(c) == "date" for c in df.columns):
        return df
    if isinstance(df.index, pd.DatetimeIndex) or _canonical(df.index.name) == "date":
        out = df.reset_index()
        return out.rename(columns={out.columns[0]: df.index.name or "date"})
    return df


def _blank_rows(df: pd.DataFrame) -> np.ndarray:
    """(N,) rows whose every cell is an empty string: blank lines of a CSV, not data."""
    blank = np.ones(len(df), dtype=bool)
    for col in df.columns:
        s = df[col]
        if is_numeric_dtype(s) or is_datetime64_any_dtype(s) or is_bool_dtype(s):
            return np.zeros(len(df), dtype=bool)
        blank &= s.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
    return blank


def _is_missing(v: object) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v))


def _parse_numbers(s: pd.Series, missing: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
    """((N,) float64 with NaN for missing cells, (N,) mask of cells that are not numbers)."""
    if is_bool_dtype(s):
        return np.full(len(s), np.nan), np.ones(len(s), dtype=bool)
    if is_numeric_dtype(s):
        return s.to_numpy(dtype="float64", na_value=np.nan), np.zeros(len(s), dtype=bool)
    out, wrong = np.full(len(s), np.nan), np.zeros(len(s), dtype=bool)
    for k, v in enumerate(s.to_numpy(dtype=object)):
        if _is_missing(v) or (isinstance(v, str) and v.strip().lower() in missing):
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (str, Real)):
            wrong[k] = True  # Python's float() would accept True, bytes and Decimal-like oddities
            continue
        try:
            out[k] = float(v)  # correctly rounded: CSV round trips are exact
        except (TypeError, ValueError, OverflowError):
            wrong[k] = True
    return out, wrong


def _to_datetime(text: np.ndarray, fmt: str) -> np.ndarray:
    try:
        d = pd.to_datetime(text, format=fmt, errors="coerce")
    except ValueError:  # mixed UTC offsets: compare in UTC
        d = pd.to_datetime(text, format=fmt, errors="coerce", utc=True).tz_convert(None)
    d = pd.DatetimeIndex(d)
    return (d.tz_localize(None) if d.tz is not None else d).to_numpy()


def _parse_dates(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """((N,) datetime64[us] with NaT where missing or unparsable, (N,) cell texts for messages)."""
    if is_datetime64_any_dtype(s):
        d = pd.DatetimeIndex(s)
        d = d.tz_localize(None) if d.tz is not None else d
        parsed, text = d.to_numpy(), np.array(["" if v is pd.NaT else str(v) for v in d], dtype=object)
    else:
        text = np.array(["" if _is_missing(v) else str(v).strip() for v in s], dtype=object)
        filled = text[text != ""]
        guesses = Counter(pd.tseries.api.guess_datetime_format(t) for t in filled[:20])
        parsed, best = None, -1
        # One format for the whole column: a file mixing 03/02 and 02/03 is an error, not a guess.
        for fmt in ["ISO8601", *(g for g, _ in guesses.most_common() if g)]:
            d = _to_datetime(text, fmt)
            ok = int((~np.isnat(d)).sum())
            if ok > best:
                parsed, best = d, ok
            if ok == len(filled):
                break
    # pandas 3 keeps dates in microseconds by default: one unit for every source, whatever it read.
    out = np.asarray(parsed).astype("datetime64[us]")
    return out, text


def validate_ohlcv(df: pd.DataFrame, source_name: str, *, price: str = "adj", fill: str | None = None,
                   drop_invalid: bool = False, notes: list[str] | None = None,
                   require: Iterable[str] = OHLCV_COLUMNS, na_values: Iterable[str] = ()) -> pd.DataFrame:
    """The one validation every source goes through; see :func:`load_ohlcv` for the options."""
    if price not in ("adj", "raw"):
        raise ValueError(f"price must be 'adj' or 'raw', not {price!r}")
    if fill not in (None, "ffill"):
        raise ValueError(f"fill must be None or 'ffill', not {fill!r}")
    require = tuple(require)
    if unknown := [c for c in require if c not in (*OHLCV_COLUMNS, "adj_close")]:
        raise ValueError(f"unknown required column(s) {unknown}; choose from {(*OHLCV_COLUMNS, 'adj_close')}")
    name = str(source_name)
    df = _with_date_column(df)
    original: dict[str, str] = {}
    for col in df.columns:
        if (canon := _canonical(col)) is None:
            continue  # extra columns (OpenInt, Dividends, ...) are ignored
        if canon in original:
            raise DataError(name, f"columns {original[canon]!r} and {str(col)!r} both mean {canon!r}; "
                                  "keep one")
        original[canon] = str(col)
    if missing := [c for c in ("date", *require) if c not in original]:
        found = ", ".join(repr(str(c)) for c in df.columns) or "none"
        raise DataError(name, f"missing required column{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(missing)} (found: {found})")
    blank = _blank_rows(df)
    if blank.all():
        raise DataError(name, "no data rows")
    keep = np.flatnonzero(~blank)
    t = _Table(name, drop_invalid, original, rows=keep + 1)  # data row k is line k + 1 of a CSV
    df = df.iloc[keep]
    missing_text = frozenset(_MISSING | {str(v).strip().lower() for v in na_values})
    t.dates, t.raw["date"] = _parse_dates(df[original["date"]])
    used = [c for c in (*OHLCV_COLUMNS, *(["adj_close"] if price == "adj" else [])) if c in original]
    wrong = np.zeros((len(df), len(used)), dtype=bool)  # (N, C)
    for j, c in enumerate(used):
        t.raw[c] = df[original[c]].to_numpy(dtype=object)
        t.values[c], wrong[:, j] = _parse_numbers(df[original[c]], missing_text)

    def bad_date(i: int, j: int) -> str:
        text = t.raw["date"][i]
        return "missing date" if text == "" else f"cannot parse date {_show(text)}"

    wrong = wrong[t.fail(np.isnat(t.dates), ["date"], "missing or unparsable dates", bad_date)]
    t.fail(wrong, used, "non-numeric values",
           lambda i, j: f"expected a number, got {_show(t.raw[used[j]][i])}")
    return _check_values(t, used, price, fill, notes)


def _check_values(t: _Table, used: list[str], price: str, fill: str | None,
                  notes: list[str] | None) -> pd.DataFrame:
    """Duplicates, order, finiteness, signs and bar consistency; then the output frame."""
    first_seen: dict[np.datetime64, int] = {}
    for k, d in enumerate(t.dates):  # rows are still in source order here
        first_seen.setdefault(d, int(t.rows[k]))
    dup = pd.Series(t.dates).duplicated(keep="first").to_numpy()
    t.fail(dup, None, "duplicate dates (kept the first)",
           lambda i, j: f"duplicate date, first seen at row {first_seen[t.dates[i]]}")
    order = np.argsort(t.dates, kind="stable")
    if moved := int((order != np.arange(len(order))).sum()):
        t.keep(order)
        t.notes.append(f"sorted {moved} out-of-order rows")

    values = np.column_stack([t.values[c] for c in used])  # (N, C)
    if fill == "ffill":
        frame = pd.DataFrame(np.where(np.isfinite(values), values, np.nan)).ffill()
        repaired = ~np.isfinite(values) & frame.notna().to_numpy()
        if repaired.any():
            values = frame.to_numpy()
            t.values = {c: values[:, j] for j, c in enumerate(used)}
            cells, rows = int(repaired.sum()), int(repaired.any(axis=1).sum())
            t.notes.append(f"forward-filled {cells} missing/infinite cell{'s' if cells > 1 else ''} "
                           f"in {rows} row{'s' if rows > 1 else ''}")

    def nonfinite(i: int, j: int) -> str:
        v = t.values[used[j]][i]
        if np.isinf(v):
            return f"infinite value {_num(v)}"
        return "missing value (NaN)" + (", nothing earlier to forward-fill from" if fill else "")

    t.fail(~np.isfinite(np.column_stack([t.values[c] for c in used])), used,
           "missing or infinite values", nonfinite)
    prices = [c for c in used if c in PRICE_COLUMNS]
    t.fail(np.column_stack([t.values[c] <= 0 for c in prices]), prices, "non-positive prices",
           lambda i, j: f"non-positive price {_num(t.values[prices[j]][i])}")
    if "high" in t.values and "low" in t.values:
        hi, lo = t.values["high"], t.values["low"]
        t.fail(hi < lo * (1 - _REL_TOL), ["high"], "high below low",
               lambda i, j: f"high {_num(t.values['high'][i])} is below low {_num(t.values['low'][i])}")
        for c in ("open", "close"):
            if c in t.values:
                hi, lo, v = t.values["high"], t.values["low"], t.values[c]
                outside = (v > hi * (1 + _REL_TOL)) | (v < lo * (1 - _REL_TOL))
                t.fail(outside, [c], f"{c} outside [low, high]",
                       lambda i, j, c=c: f"{c} {_num(t.values[c][i])} outside "
                                         f"[low {_num(t.values['low'][i])}, high {_num(t.values['high'][i])}]")
    if "volume" in t.values:
        t.fail(t.values["volume"] < 0, ["volume"], "negative volume",
               lambda i, j: f"negative volume {_num(t.values['volume'][i])}")
    if len(t.rows) == 0:
        raise DataError(t.name, "no valid rows left after dropping invalid ones")

    out = {c: t.values[c] for c in OHLCV_COLUMNS if c in t.values}
    if "adj_close" in t.values and "close" in t.values:  # price "adj": rescale the whole bar
        factor = t.values["adj_close"] / t.values["close"]
        for c in ("open", "high", "low"):
            if c in out:
                out[c] = out[c] * factor
    if "adj_close" in t.values:
        out["close"] = t.values["adj_close"]
    result = pd.DataFrame(out, index=pd.DatetimeIndex(t.dates, name="date"), dtype="float64")
    result.attrs["source"] = t.name
    result.attrs["notes"] = list(t.notes)
    if notes is not None:
        notes.extend(t.notes)
    return result
