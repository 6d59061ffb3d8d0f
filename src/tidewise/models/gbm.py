"""LightGBM: a classifier for direction, a regressor for return and log-variance, and quantile
regressors, each early-stopped on the fold's purged validation tail."""
from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from tidewise.models.base import QUANTILE_COLUMNS, FoldData, Forecaster, empty_predictions


class LightGBMModel(Forecaster):
    family = "tree"
    outputs = ("p_up", "ret", *QUANTILE_COLUMNS, "var")

    def __init__(self, n_estimators: int = 300, learning_rate: float = 0.03, num_leaves: int = 15,
                 min_child_samples: int = 50, subsample: float = 0.8, colsample: float = 0.8,
                 seed: int = 0, n_jobs: int = 1, **kwargs: Any) -> None:
        super().__init__(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                         min_child_samples=min_child_samples, subsample=subsample,
                         colsample=colsample, seed=seed, n_jobs=n_jobs, **kwargs)
        self.boosters: dict[str, lgb.Booster] = {}

    def _params(self, objective: str, **extra: Any) -> dict[str, Any]:
        k = self.init_kwargs
        return {"objective": objective, "learning_rate": k["learning_rate"],
                "num_leaves": k["num_leaves"], "min_child_samples": k["min_child_samples"],
                "subsample": k["subsample"], "subsample_freq": 1, "colsample_bytree": k["colsample"],
                "seed": k["seed"], "deterministic": True, "force_row_wise": True,
                "num_threads": k["n_jobs"], "verbose": -1, **extra}

    def _train(self, objective: str, Xt, yt, Xv, yv, **extra: Any) -> lgb.Booster:
        dtrain = lgb.Dataset(Xt, yt, free_raw_data=False)
        callbacks = []
        valid = []
        if len(yv):
            valid = [lgb.Dataset(Xv, yv, reference=dtrain)]
            callbacks = [lgb.early_stopping(30, verbose=False)]
        return lgb.train(self._params(objective, **extra), dtrain,
                         num_boost_round=self.init_kwargs["n_estimators"], valid_sets=valid,
                         callbacks=callbacks)

    def fit(self, data: FoldData) -> "LightGBMModel":
        def rows_xy(rows):
            y = data.y.iloc[rows]
            keep = y.notna().all(axis=1).to_numpy()
            return data.X.iloc[rows[keep]].to_numpy("float64"), y[keep]

        Xt, yt = rows_xy(data.train)
        Xv, yv = rows_xy(data.val)
        floor = 0.01 * float(yt["var"].mean())  # zero-return days would give log(0) outliers
        b = {"dir": self._train("binary", Xt, yt["dir"], Xv, yv["dir"]),
             "ret": self._train("regression", Xt, yt["ret"], Xv, yv["ret"]),
             "var": self._train("regression", Xt, np.log(np.maximum(yt["var"], floor)),
                                Xv, np.log(np.maximum(yv["var"], floor)))}
        for q, col in zip(data.quantiles, QUANTILE_COLUMNS):
            b[col] = self._train("quantile", Xt, yt["ret"], Xv, yv["ret"], alpha=q)
        self.boosters = b
        # Smearing correction for exp(E[log v]) on the training rows (as in LinearModel).
        self.smear = float(np.mean(yt["var"]) / np.mean(np.exp(b["var"].predict(Xt))))
        return self

    def predict(self, data: FoldData, rows: np.ndarray) -> pd.DataFrame:
        X = data.X.iloc[rows].to_numpy("float64")
        out = empty_predictions(data.X.index[rows])
        out["p_up"] = self.boosters["dir"].predict(X)
        out["ret"] = self.boosters["ret"].predict(X)
        qs = np.sort(np.column_stack([self.boosters[c].predict(X) for c in QUANTILE_COLUMNS]), axis=1)
        out[list(QUANTILE_COLUMNS)] = qs  # sorting removes quantile crossing
        out["var"] = np.exp(self.boosters["var"].predict(X)) * self.smear
        return out

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        # LightGBM's own text format: plain data, safe to reload (no pickle).
        return {"boosters": {k: b.model_to_string() for k, b in self.boosters.items()},
                "smear": self.smear}, {}

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.boosters = {k: lgb.Booster(model_str=s) for k, s in meta["boosters"].items()}
        self.smear = float(meta["smear"])

    def n_params(self) -> int:
        # Each leaf value and each split (feature, threshold) counts as a parameter.
        total = 0
        for b in self.boosters.values():
            for tree in b.dump_model()["tree_info"]:
                leaves = tree["num_leaves"]
                total += leaves + 2 * (leaves - 1)
        return total

    def flops_per_sample(self) -> float:
        # One comparison per tree level visited plus one add per tree, summed over boosters.
        total = 0.0
        for b in self.boosters.values():
            for tree in b.dump_model()["tree_info"]:
                total += np.log2(max(tree["num_leaves"], 2)) + 1
        return total
