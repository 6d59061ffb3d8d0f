"""load_ohlcv / validate_ohlcv: every bad-file kind gives a one-line DataError naming file, row, column."""
from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidewise.data import DataError, load_ohlcv, validate_ohlcv

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"
ROWS = [  # data rows 1..5 as the user sees them
    "2015-01-02,10,11,9,10.5,5.25,100",
    "2015-01-05,10.5,12,10,11,5.5,200",
    "2015-01-06,11,11.5,10.5,11.2,5.6,300",
    "2015-01-07,11.2,11.4,10.8,11,5.5,400",
    "2015-01-08,11,11.6,10.9,11.5,5.75,500",
]
DATES = ["2015-01-02", "2015-01-05", "2015-01-06", "2015-01-07", "2015-01-08"]


def csv_text(rows=ROWS, header=HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def with_row(k: int, line: str) -> str:
    """The good file with 1-based data row k replaced."""
    rows = list(ROWS)
    rows[k - 1] = line
    return csv_text(rows)


def write(tmp_path: Path, content: str | bytes, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def load_error(source, **kw) -> str:
    with pytest.raises(DataError) as info:
        load_ohlcv(source, **kw)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    return message


def test_good_file_loads_clean(tmp_path):
    path = write(tmp_path, csv_text())
    df = load_ohlcv(path, price="raw")
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert df.index.name == "date" and isinstance(df.index, pd.DatetimeIndex) and df.index.tz is None
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert (df.dtypes == "float64").all()
    assert list(df.index.strftime("%Y-%m-%d")) == DATES
    assert df["close"].tolist() == [10.5, 11.0, 11.2, 11.0, 11.5]
    assert df.attrs == {"source": str(path), "notes": []}


def test_message_format_exact(tmp_path):
    path = write(tmp_path, with_row(3, "2015-01-06,11,11.5,10.5,-1.0,5.6,300"))
    assert load_error(path) == f"{path}: row 3 (2015-01-06), column 'Close': non-positive price -1.0"
    with pytest.raises(DataError) as info:
        load_ohlcv(path)
    assert (info.value.row, info.value.date, info.value.column) == (3, "2015-01-06", "Close")
    quoted = write(tmp_path, with_row(2, '2015-01-05,10.5,"1\n2",10,11,5.5,200'), "quoted.csv")
    assert r"row 2 (2015-01-05), column 'High': expected a number, got '1\n2'" in load_error(quoted)


BAD_ROWS = {  # kind -> (data row, replacement line, expected text fragments)
    "unparsable date": (3, "2015-13-45,11,11.5,10.5,11.2,5.6,300", ["row 3", "'Date'", "'2015-13-45'"]),
    "missing date": (2, ",10.5,12,10,11,5.5,200", ["row 2", "missing date"]),
    "duplicate date": (4, "2015-01-06,11.2,11.4,10.8,11,5.5,400", ["row 4 (2015-01-06)", "first seen at row 3"]),
    "nan": (2, "2015-01-05,10.5,12,10,,5.5,200", ["row 2 (2015-01-05)", "column 'Close'", "missing value"]),
    "nan literal": (5, "2015-01-08,11,11.6,10.9,11.5,5.75,NaN", ["row 5 (2015-01-08)", "'Volume'", "missing"]),
    "inf": (2, "2015-01-05,inf,12,10,11,5.5,200", ["row 2 (2015-01-05)", "column 'Open'", "infinite"]),
    "text in price": (3, "2015-01-06,11,abc,10.5,11.2,5.6,300", ["row 3 (2015-01-06)", "'High'", "'abc'"]),
    "text in volume": (1, "2015-01-02,10,11,9,10.5,5.25,lots", ["row 1 (2015-01-02)", "'Volume'", "'lots'"]),
    "negative price": (2, "2015-01-05,10.5,12,-10,11,5.5,200", ["row 2 (2015-01-05)", "'Low'", "non-positive"]),
    "zero price": (4, "2015-01-07,11.2,11.4,10.8,11,0,400", ["row 4 (2015-01-07)", "'Adj Close'", "non-positive"]),
    "high below low": (2, "2015-01-05,10.5,9,10,11,5.5,200", ["row 2 (2015-01-05)", "'High'", "below low"]),
    "close above high": (5, "2015-01-08,11,11.6,10.9,11.7,5.75,500", ["row 5 (2015-01-08)", "'Close'", "outside"]),
    "close below low": (1, "2015-01-02,10,11,9,8.9,5.25,100", ["row 1 (2015-01-02)", "'Close'", "outside"]),
    "open outside bar": (1, "2015-01-02,12,11,9,10.5,5.25,100", ["row 1 (2015-01-02)", "'Open'", "outside"]),
    "negative volume": (3, "2015-01-06,11,11.5,10.5,11.2,5.6,-300", ["row 3 (2015-01-06)", "'Volume'", "negative"]),
}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_bad_row_is_one_line_error_naming_file_row_column(tmp_path, kind):
    row, line, fragments = BAD_ROWS[kind]
    path = write(tmp_path, with_row(row, line))
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message, (kind, message)


BAD_FILES = {  # kind -> (content, file name, expected fragment)
    "zero bytes": (b"", "prices.csv", "empty file"),
    "header only": (HEADER + "\n", "prices.csv", "no data rows"),
    "whitespace only": ("\n\n  \n", "prices.csv", "empty"),
    "binary": (bytes(range(256)) * 8, "prices.csv", "binary"),
    "undecodable": ("Date,Close\n2015-01-02,caf\xe9\n".encode("latin-1"), "prices.csv", "UTF-8"),
    "control garbage": (bytes(range(1, 32)) * 20, "prices.csv", "binary"),
    "ragged csv": ("a,b\n1,2\n1,2,3,4\n", "prices.csv", "cannot parse"),
    "corrupt gzip": (b"\x1f\x8b\x08\x00garbage", "prices.csv.gz", "gzip"),
    "empty gzip": (gzip.compress(b""), "prices.csv.gz", "empty"),
    "text named parquet": (csv_text(), "prices.parquet", "parquet"),
    "corrupt parquet": (b"PAR1" + b"\x01" * 64 + b"PAR1", "prices.parquet", "parquet"),
    "missing columns": ("Date,Open,Close\n2015-01-02,1,2\n", "prices.csv", "high, low, volume"),
    "ambiguous columns": ("Date,timestamp,Open,High,Low,Close,Volume\n2015-01-02,x,1,1,1,1,1\n", "prices.csv", "both mean 'date'"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_file_is_one_line_error_naming_file(tmp_path, kind):
    content, name, fragment = BAD_FILES[kind]
    path = write(tmp_path, content, name)
    message = load_error(path)
    assert message.startswith(f"{path}: ") and fragment in message, message


def test_missing_file_and_directory(tmp_path):
    assert "no such file" in load_error(tmp_path / "nope.csv")
    assert "directory" in load_error(tmp_path)


def test_errors_report_file_rows_despite_blank_lines_and_sorting(tmp_path):
    # Blank lines count as rows of the file; sorting does not renumber rows.
    rows = [ROWS[4], "", ROWS[1], ROWS[0], "2015-01-06,11,11.5,10.5,11.2,5.6,-1"]
    message = load_error(write(tmp_path, csv_text(rows)))
    assert "row 5 (2015-01-06), column 'Volume'" in message


def test_error_counts_further_bad_rows(tmp_path):
    rows = [r.replace(",100", ",-1").replace(",300", ",-3") for r in ROWS]
    assert "row 1 (2015-01-02)" in (m := load_error(write(tmp_path, csv_text(rows)))) and "1 more row" in m


def test_wrong_types_in_a_dataframe():
    good = load_ohlcv(pd.read_csv(io.StringIO(csv_text())))
    frame = pd.read_csv(io.StringIO(csv_text()))
    volume = frame["Volume"].to_numpy(dtype=object)
    volume[2] = [1, 2]
    frame["Volume"] = volume
    assert re.search(r"<DataFrame>: row 3 \(2015-01-06\), column 'Volume': expected a number", load_error(frame))
    frame["Volume"] = True
    assert "row 1 (2015-01-02), column 'Volume'" in load_error(frame)
    assert len(good) == 5


def test_sorting_is_the_only_silent_repair_and_is_noted(tmp_path):
    notes: list[str] = []
    df = load_ohlcv(write(tmp_path, csv_text([ROWS[1], ROWS[0], *ROWS[2:]])), notes=notes)
    assert list(df.index.strftime("%Y-%m-%d")) == DATES
    assert df.attrs["notes"] == ["sorted 2 out-of-order rows"] and notes == ["sorted 2 out-of-order rows"]
    reversed_df = load_ohlcv(write(tmp_path, csv_text(ROWS[::-1])))
    assert reversed_df.attrs["notes"] == ["sorted 4 out-of-order rows"]  # the middle row stays put
    pd.testing.assert_frame_equal(reversed_df, df, check_flags=False)


def test_ffill_repairs_and_notes(tmp_path):
    path = write(tmp_path, with_row(3, "2015-01-06,,,,inf,,"))
    assert "row 3 (2015-01-06)" in load_error(path)
    df = load_ohlcv(path, fill="ffill")
    assert df.iloc[2].tolist() == df.iloc[1].tolist()
    assert df.attrs["notes"] == ["forward-filled 6 missing/infinite cells in 1 row"]
    leading = write(tmp_path, with_row(1, "2015-01-02,10,11,9,10.5,5.25,"), "lead.csv")
    assert "row 1 (2015-01-02), column 'Volume'" in load_error(leading, fill="ffill")
    dropped = load_ohlcv(leading, fill="ffill", drop_invalid=True)
    assert len(dropped) == 4 and dropped.attrs["notes"] == [
        "dropped 1 row with missing or infinite values (row 1)"]


def test_drop_invalid_drops_each_kind_and_notes_counts(tmp_path):
    rows = [*ROWS, "2015-01-09,1.6,2,1.5,1.8,1.8,-5", "bad-date,1,2,1,1.5,1.5,5",
            "2015-01-12,1,2,1,abc,1,5", "2015-01-05,1,2,1,1.5,1.5,5", "2015-01-13,1,2,1,,1,5",
            "2015-01-14,3,2,1,1.5,1.5,5", "2015-01-15,1,2,0,1.5,1.5,5"]
    notes: list[str] = []
    df = load_ohlcv(write(tmp_path, csv_text(rows)), drop_invalid=True, notes=notes)
    assert list(df.index.strftime("%Y-%m-%d")) == DATES
    assert notes == df.attrs["notes"] == [
        "dropped 1 row with missing or unparsable dates (row 7)",
        "dropped 1 row with non-numeric values (row 8)",
        "dropped 1 row with duplicate dates (kept the first) (row 9)",
        "dropped 1 row with missing or infinite values (row 10)",
        "dropped 1 row with non-positive prices (row 12)",
        "dropped 1 row with open outside [low, high] (row 11)",
        "dropped 1 row with negative volume (row 6)",
    ]


def test_drop_invalid_with_nothing_left(tmp_path):
    path = write(tmp_path, csv_text([r.replace(",100", ",-1") for r in ROWS[:1]]))
    assert "no valid rows left" in load_error(path, drop_invalid=True)


@pytest.mark.parametrize("names", [
    ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"),
    ("date", "open", "high", "low", "close", "adj_close", "volume"),
    ("timestamp", "OPEN", " High ", "low", "CLOSE", "AdjClose", "vol"),
    ("Datetime", "Open", "High", "Low", "Close", "adjclose", "Vol"),
    ("time", "open", "HIGH", "Low", "close", "Adj_Close", "VOLUME"),
])
def test_column_spellings_normalise(tmp_path, names):
    expected = load_ohlcv(write(tmp_path, csv_text(), "ref.csv"))
    df = load_ohlcv(write(tmp_path, csv_text(header=",".join(names))))
    pd.testing.assert_frame_equal(df, expected, check_flags=False)
    assert df.attrs["notes"] == []


def test_extra_columns_ignored_and_tab_separated(tmp_path):
    rows = [r + ",0" for r in ROWS]
    df = load_ohlcv(write(tmp_path, csv_text(rows, HEADER + ",OpenInt")))
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    tsv = load_ohlcv(write(tmp_path, csv_text().replace(",", "\t"), "p.tsv"))
    pd.testing.assert_frame_equal(tsv, df, check_flags=False)


def test_adj_versus_raw(tmp_path):
    path = write(tmp_path, csv_text())
    raw, adj = load_ohlcv(path, price="raw"), load_ohlcv(path, price="adj")
    np.testing.assert_allclose(adj["close"], [5.25, 5.5, 5.6, 5.5, 5.75])
    factor = adj["close"] / raw["close"]  # 0.5 on every row of this file
    for col in ("open", "high", "low"):
        np.testing.assert_allclose(adj[col], raw[col] * factor)
    assert (adj["volume"] == raw["volume"]).all()
    assert ((adj["low"] <= adj["close"]) & (adj["close"] <= adj["high"])).all()
    no_adj = write(tmp_path, csv_text([r.rsplit(",", 2)[0] + "," + r.rsplit(",", 1)[1] for r in ROWS],
                                      "Date,Open,High,Low,Close,Volume"), "noadj.csv")
    pd.testing.assert_frame_equal(load_ohlcv(no_adj), raw, check_flags=False, check_like=True)
    with pytest.raises(ValueError):
        load_ohlcv(path, price="adjusted")
    with pytest.raises(ValueError):
        load_ohlcv(path, fill="bfill")


def test_parquet_and_gzip_round_trip(tmp_path, ohlcv_frame):
    ohlcv_frame.to_parquet(tmp_path / "a.parquet")  # date as the index
    ohlcv_frame.reset_index().to_parquet(tmp_path / "b.pq", index=False)  # date as a column
    ohlcv_frame.to_csv(tmp_path / "c.csv.gz")
    for name in ("a.parquet", "b.pq", "c.csv.gz"):
        df = load_ohlcv(tmp_path / name)
        pd.testing.assert_frame_equal(df, ohlcv_frame, check_flags=False, check_freq=False)
        assert df.attrs == {"source": str(tmp_path / name), "notes": []}


def test_close_only_with_require(tmp_path):
    path = write(tmp_path, "date,close\n2015-01-05,2\n2015-01-02,1\n")
    assert "missing required columns open, high, low, volume" in load_error(path)
    df = load_ohlcv(path, require=("close",))
    assert list(df.columns) == ["close"] and df["close"].tolist() == [1.0, 2.0]


def test_validate_is_the_shared_path_for_frames(ohlcv_frame):
    df = validate_ohlcv(ohlcv_frame.reset_index(), "mine")
    pd.testing.assert_frame_equal(df, ohlcv_frame, check_flags=False, check_freq=False)
    bad = ohlcv_frame.copy()
    bad.iloc[7, bad.columns.get_loc("high")] = np.nan
    with pytest.raises(DataError, match=r"^mine: row 8 \(2015-01-13\), column 'high': missing value"):
        validate_ohlcv(bad, "mine")


def test_dates_in_other_formats_and_time_zones(tmp_path):
    us = [r.replace("2015-01-0", "1/") .replace(",", "/2015,", 1) for r in ROWS]  # 1/2/2015 ...
    df = load_ohlcv(write(tmp_path, csv_text(us)))
    assert list(df.index.strftime("%Y-%m-%d")) == DATES
    tz = [r.replace(",", "T00:00:00+01:00,", 1) for r in ROWS]
    tz_df = load_ohlcv(write(tmp_path, csv_text(tz), "tz.csv"))
    assert tz_df.index.tz is None and list(tz_df.index.strftime("%Y-%m-%d")) == DATES


# ------------------------------------------------------------------------------------ properties
@st.composite
def valid_frames(draw):
    n = draw(st.integers(1, 25))
    days = draw(st.lists(st.integers(0, 3000), min_size=n, max_size=n, unique=True))
    index = pd.DatetimeIndex(pd.Timestamp("2000-01-03") + pd.to_timedelta(sorted(days), unit="D"), name="date")
    price = st.floats(0.01, 1e6, allow_nan=False, allow_infinity=False)
    lows = np.array(draw(st.lists(price, min_size=n, max_size=n)))
    spans = np.array(draw(st.lists(st.floats(0.0, 2.0), min_size=n, max_size=n)))
    high = lows * (1.0 + spans)
    where = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=2 * n, max_size=2 * n))).reshape(2, n)
    opens, closes = lows + where * (high - lows)  # within [low, high], up to rounding
    volume = np.array(draw(st.lists(st.floats(0, 1e12, allow_nan=False), min_size=n, max_size=n)))
    return pd.DataFrame({"open": np.clip(opens, lows, high), "high": high, "low": lows,
                         "close": np.clip(closes, lows, high), "volume": volume}, index=index)


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(frame=valid_frames())
def test_property_valid_frames_round_trip_through_csv(tmp_path, frame):
    path = tmp_path / "p.csv"
    frame.to_csv(path)
    df = load_ohlcv(path, price="raw")
    pd.testing.assert_frame_equal(df, frame, check_exact=True, check_flags=False, check_freq=False)
    assert df.attrs["notes"] == []


CORRUPTIONS = {"text": "oops", "nan": "", "inf": "-inf", "zero": "0", "negative": "-3.5"}


@SETTINGS
@given(frame=valid_frames(), data=st.data())
def test_property_one_corrupt_cell_is_caught_at_its_row_and_column(tmp_path, frame, data):
    row = data.draw(st.integers(0, len(frame) - 1))
    column = data.draw(st.sampled_from(list(frame.columns)))
    kind = data.draw(st.sampled_from([k for k in CORRUPTIONS if column != "volume" or k != "zero"]))
    text = frame.astype(object)
    text.iloc[row, frame.columns.get_loc(column)] = CORRUPTIONS[kind]
    path = tmp_path / "p.csv"
    text.to_csv(path)
    message = load_error(path, price="raw")
    date = frame.index[row].strftime("%Y-%m-%d")
    assert message.startswith(f"{path}: row {row + 1} ({date}), column '{column}': "), (kind, message)
