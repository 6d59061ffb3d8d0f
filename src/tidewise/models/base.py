"""The contract every forecaster in the registry follows.

Shape legend used across tidewise: N rows (trading days), F features, B batch, T context length,
D model width, Q quantiles.

A forecaster sees one fold at a time through :class:`FoldData`. Targets outside the fold's
train and validation rows are NaN, so a model cannot read the future even by mistake.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

# Every forecaster returns a frame with these columns; a model leaves NaN where it has no opinion.
#   p_up : probability that the h-day forward log return is > 0
#   ret  : point forecast of the h-day forward log return
#   q10, q50, q90 : return quantiles (names follow DEFAULT_QUANTILES)
#   var  : forecast of the realised variance over the next h days (sum of squared daily log returns)
DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
QUANTILE_COLUMNS: tuple[str, ...] = tuple(f"q{int(round(q * 100))}" for q in DEFAULT_QUANTILES)
PRED_COLUMNS: tuple[str, ...] = ("p_up", "ret", *QUANTILE_COLUMNS, "var")
TARGET_COLUMNS: tuple[str, ...] = ("ret", "dir", "var")


@dataclass(frozen=True)
class FoldData:
    """Everything one walk-forward fold may use.

    X       (N, F) causal features for every row up to the end of the test block.
    y       (N, 3) targets `ret`, `dir`, `var`; NaN outside `train` and `val` (no look-ahead).
    returns (N,)   daily log return r_t = log(close_t / close_{t-1}); known at t, so not a leak.
    train, val, test: integer row positions; train and val are already purged and embargoed.
    """

    X: pd.DataFrame
    y: pd.DataFrame
    returns: pd.Series
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    horizon: int = 1
    fold_id: int = 0
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def fit_rows(self) -> np.ndarray:
        """Train and validation rows together, for models that do not early-stop."""
        return np.union1d(self.train, self.val)


def empty_predictions(index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(np.nan, index=index, columns=list(PRED_COLUMNS), dtype="float64")


class Forecaster:
    """Base class: fit on a fold, predict rows, save and reload safely (JSON + safetensors).

    Subclasses set `name` and `outputs`, implement `fit`, `predict`, `get_state`, `set_state`.
    Constructor keyword arguments must be JSON-serialisable; they are stored and replayed on load.
    """

    name: ClassVar[str] = "base"
    outputs: ClassVar[tuple[str, ...]] = ()
    family: ClassVar[str] = "naive"  # naive | classical | tree | neural

    def __init__(self, **kwargs: Any) -> None:
        self.init_kwargs: dict[str, Any] = dict(kwargs)
        self.seed: int = int(kwargs.get("seed", 0))

    # -- learning -------------------------------------------------------------------------
    def fit(self, data: FoldData) -> "Forecaster":
        raise NotImplementedError

    def predict(self, data: FoldData, rows: np.ndarray) -> pd.DataFrame:
        """Return a frame indexed by data.X.index[rows] with columns PRED_COLUMNS."""
        raise NotImplementedError

    # -- state ----------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able metadata and named numpy arrays that fully describe the fitted model."""
        raise NotImplementedError

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta, arrays = self.get_state()
        doc = {"model": self.name, "init": self.init_kwargs, "state": meta}
        (path / "config.json").write_text(json.dumps(doc, indent=2, default=_json_default))
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()} or {"_empty": np.zeros(1)},
                  str(path / "weights.safetensors"))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Forecaster":
        """Rebuild from JSON + safetensors; never unpickles anything."""
        from safetensors.numpy import load_file

        from tidewise.models.registry import create

        path = Path(path)
        doc = json.loads((path / "config.json").read_text())
        model = create(doc["model"], **doc["init"])
        arrays = load_file(str(path / "weights.safetensors"))
        arrays.pop("_empty", None)
        model.set_state(doc["state"], arrays)
        return model

    # -- compute accounting (overridden by neural models) ---------------------------------
    def n_params(self) -> int:
        try:
            _, arrays = self.get_state()
        except Exception:
            return 0
        return int(sum(np.asarray(a).size for a in arrays.values()))

    def flops_per_sample(self) -> float | None:
        return None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
