"""Ridge / logistic regression on the causal features (scikit-learn), scaler fitted per fold."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge

from tidewise.features import FoldScaler
from tidewise.models.base import QUANTILE_COLUMNS, FoldData, Forecaster, empty_predictions


class LinearModel(Forecaster):
    """Logistic regression for direction; ridge for return and log realised variance.

    Quantiles are the return forecast plus empirical quantiles of the training residuals.
    """

    family = "classical"
    outputs = ("p_up", "ret", *QUANTILE_COLUMNS, "var")

    def __init__(self, alpha: float = 10.0, C: float = 0.05, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(alpha=alpha, C=C, seed=seed, **kwargs)
        self.alpha, self.C = alpha, C

    def fit(self, data: FoldData) -> "LinearModel":
        rows = data.fit_rows  # no early stopping, so the validation tail is training data too
        y = data.y.iloc[rows]
        keep = y.notna().all(axis=1).to_numpy()
        rows, y = rows[keep], y[keep]
        self.scaler = FoldScaler().fit(data.X.iloc[rows])
        Z = self.scaler.transform(data.X.iloc[rows])
        clf = LogisticRegression(C=self.C, max_iter=500).fit(Z, y["dir"].astype(int))
        reg = Ridge(alpha=self.alpha).fit(Z, y["ret"])
        floor = 0.01 * float(y["var"].mean())  # zero-return days would give log(0) outliers
        log_var = np.log(np.maximum(y["var"].to_numpy(), floor))
        vreg = Ridge(alpha=self.alpha).fit(Z, log_var)
        # exp(E[log v]) underestimates E[v]; rescale by the training ratio (smearing estimate).
        smear = float(np.mean(y["var"]) / np.mean(np.exp(vreg.predict(Z))))
        resid = y["ret"].to_numpy() - reg.predict(Z)
        self.arrays = {
            "clf_coef": clf.coef_.ravel(), "clf_intercept": clf.intercept_.ravel(),
            "ret_coef": reg.coef_.ravel(), "ret_intercept": np.atleast_1d(reg.intercept_),
            "var_coef": vreg.coef_.ravel(), "var_intercept": np.atleast_1d(vreg.intercept_),
            "resid_q": np.quantile(resid, data.quantiles), "smear": np.array([smear]),
            **self.scaler.state(),
        }
        return self

    def predict(self, data: FoldData, rows: np.ndarray) -> pd.DataFrame:
        a = self.arrays
        Z = self.scaler.transform(data.X.iloc[rows])
        out = empty_predictions(data.X.index[rows])
        out["p_up"] = 1.0 / (1.0 + np.exp(-(Z @ a["clf_coef"] + a["clf_intercept"][0])))
        ret = Z @ a["ret_coef"] + a["ret_intercept"][0]
        out["ret"] = ret
        for col, rq in zip(QUANTILE_COLUMNS, a["resid_q"]):
            out[col] = ret + rq
        out["var"] = np.exp(Z @ a["var_coef"] + a["var_intercept"][0]) * a["smear"][0]
        return out

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, self.arrays

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.arrays = dict(arrays)
        self.scaler = FoldScaler.from_state(arrays)

    def n_params(self) -> int:
        return int(sum(self.arrays[k].size for k in ("clf_coef", "clf_intercept", "ret_coef",
                                                     "ret_intercept", "var_coef", "var_intercept")))

    def flops_per_sample(self) -> float:
        # three dot products of length F (multiply + add each)
        return float(2 * 3 * self.arrays["ret_coef"].size)
