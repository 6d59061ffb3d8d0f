"""Robust features: keep the features whose relation to the target is stable across environments.

Shape legend: N rows, F features, E environments, K target columns (1 for regression and binary
classification, one one-vs-rest indicator per class for multiclass).

The training slice is split into environments (contiguous time blocks via
``make_time_environments``, market regimes, or capture conditions for traffic). For every feature
and environment the selector measures:

- IC: Spearman rank correlation of the feature with the target (with each one-vs-rest class
  indicator for classification, i.e. a rank version of the per-class mean shift);
- the per-environment LightGBM gain importance (share of the environment's total gain);
- the per-environment univariate OLS slope of the target on the feature, with a White (HC0)
  standard error; the *invariance test* is Cochran's Q test that these E slopes are equal
  (Q = sum_e w_e (b_e - b_w)^2, w_e = 1 / se_e^2, Q ~ chi^2(E - 1) under equality). A feature whose
  conditional mean of y given it changes across environments gets a small p-value.

Fit it on the training slice only (the caller's responsibility: pass the fold's training rows and
their environment labels); it never sees test rows, so it cannot leak.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

METHODS = ("ic_stability", "importance_stability", "invariance")


def make_time_environments(index_or_n: int | pd.Index | Sequence[Any], n_envs: int) -> np.ndarray:
    """Split rows into ``n_envs`` contiguous, near-equal time blocks; returns int labels (N,).

    Accepts a row count or an index (which must be sorted ascending if it is a DatetimeIndex).
    """
    if isinstance(index_or_n, (int, np.integer)):
        n = int(index_or_n)
    else:
        idx = pd.Index(index_or_n)
        if isinstance(idx, pd.DatetimeIndex) and not idx.is_monotonic_increasing:
            raise ValueError("time environments need an ascending DatetimeIndex")
        n = len(idx)
    if not 1 <= n_envs <= n:
        raise ValueError(f"need 1 <= n_envs <= n rows, got n_envs={n_envs}, n={n}")
    labels = np.empty(n, dtype=int)
    for e, block in enumerate(np.array_split(np.arange(n), n_envs)):
        labels[block] = e
    return labels


def _rank_cols(A: np.ndarray) -> np.ndarray:
    return stats.rankdata(A, axis=0)


def _corr(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of A (n, F) with every column of B (n, K) -> (F, K)."""
    A = A - A.mean(axis=0)
    B = B - B.mean(axis=0)
    num = A.T @ B
    den = np.sqrt(np.outer((A * A).sum(axis=0), (B * B).sum(axis=0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, 0.0)


def _slopes(X: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Univariate OLS slope of each target column on each feature, with White (HC0) SEs -> (F, K) x2."""
    Xc = X - X.mean(axis=0)  # (n, F)
    Tc = T - T.mean(axis=0)  # (n, K)
    sxx = (Xc * Xc).sum(axis=0)[:, None]  # (F, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(sxx > 0, (Xc.T @ Tc) / sxx, 0.0)  # (F, K)
        # residual_i = Tc_i - b * Xc_i; HC0 variance = sum(Xc^2 resid^2) / sxx^2
        var = np.empty_like(b)
        for k in range(T.shape[1]):
            resid = Tc[:, k : k + 1] - Xc * b[:, k]  # (n, F)
            var[:, k] = ((Xc * Xc * resid * resid).sum(axis=0)) / sxx[:, 0] ** 2
    return b, np.sqrt(np.where(np.isfinite(var), var, np.inf))


def _cochran_q(b: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Cochran's Q heterogeneity p-value across environments; b, se (E, F, K) -> p (F, K)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(se > 0, 1.0 / se**2, 0.0)
        bw = (w * b).sum(axis=0) / w.sum(axis=0)
        q = (w * (b - bw) ** 2).sum(axis=0)
    p = stats.chi2.sf(q, df=b.shape[0] - 1)
    return np.where(np.isfinite(p), p, 1.0)


def _lgbm_importance(X: np.ndarray, y: np.ndarray, task: str, seed: int) -> np.ndarray:
    import lightgbm as lgb

    if task == "classification" and len(np.unique(y)) < 2:  # nothing to learn in this environment
        return np.full(X.shape[1], np.nan)
    kw = dict(n_estimators=100, learning_rate=0.05, num_leaves=15, min_child_samples=20,
              subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=seed, n_jobs=1,
              deterministic=True, force_row_wise=True, verbose=-1, importance_type="gain")
    model = lgb.LGBMRegressor(**kw) if task == "regression" else lgb.LGBMClassifier(**kw)
    model.fit(X, y)
    gain = np.asarray(model.feature_importances_, dtype=float)
    return gain / gain.sum() if gain.sum() > 0 else gain


class RobustFeatureSelector:
    """Scores features by how stable their relation to the target is across environments.

    Parameters
    ----------
    task                "regression" (returns) or "classification" (binary or multiclass labels).
    method              what ``score`` (and so ``weights_`` and ``top_k``) is built from, in [0, 1]:
                        "ic_stability"          A * |mean IC| / (|mean IC| + IC std across envs)
                        "importance_stability"  A * mean share / (mean share + share std)
                        "invariance"            A * invariance p-value
                        where A = max(0, 2 * sign_agreement - 1) (0 when signs split evenly).
    min_sign_agreement  keep only if this share of environments has the majority IC sign.
    min_invariance_p    drop if the equal-slopes test rejects at this level (None: no test gate).
    min_abs_ic          drop if |mean IC| across environments is below this.
    min_score           drop if the score is below this.
    top_k               after the gates, keep at most this many, by score.
    importance          fit one LightGBM per environment for importances (forced on by
                        "importance_stability"; off saves E model fits).
    min_env_size        environments with fewer complete rows are ignored; at least two must remain.

    For multiclass targets every statistic is computed per one-vs-rest class and averaged with
    weights proportional to each class's mean |IC|; the report's per-environment ``ic[e]`` is then
    the unsigned RMS of the class ICs, ``sign[e]`` is the sign of the dominant class, and
    ``ic_mean`` is the weighted mean of |mean IC| over classes (unsigned).
    The Q test is combined across classes by Bonferroni (min p times K).

    After ``fit``: ``report_`` (per feature), ``weights_`` (= score, in [0, 1]), ``support_``
    (bool), ``selected_features_`` (list, in column order).
    """

    def __init__(self, task: str = "regression", method: str = "ic_stability",
                 min_sign_agreement: float = 1.0, min_invariance_p: float | None = 0.01,
                 min_abs_ic: float = 0.0, min_score: float = 0.0, top_k: int | None = None,
                 importance: bool = True, min_env_size: int = 30, seed: int = 0) -> None:
        if task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.task, self.method = task, method
        self.min_sign_agreement, self.min_invariance_p = min_sign_agreement, min_invariance_p
        self.min_abs_ic, self.min_score, self.top_k = min_abs_ic, min_score, top_k
        self.importance = importance or method == "importance_stability"
        self.min_env_size, self.seed = min_env_size, seed

    # -- fitting ----------------------------------------------------------------------------
    def _targets(self, y: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        if self.task == "regression":
            return y.astype(float).reshape(-1, 1), ["y"]
        classes = list(np.unique(y))
        if len(classes) < 2:
            raise ValueError("classification needs at least two classes")
        cols = classes[1:] if len(classes) == 2 else classes
        return np.stack([(y == c).astype(float) for c in cols], axis=1), cols

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray, environments: Sequence[Any]
            ) -> "RobustFeatureSelector":
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a DataFrame with named feature columns")
        y_arr, envs = np.asarray(y), np.asarray(environments)
        if not (len(X) == len(y_arr) == len(envs)):
            raise ValueError("X, y and environments must have the same length")
        ok = np.isfinite(X.to_numpy(float)).all(axis=1) & pd.notna(y_arr)
        Xa, y_arr, envs = X.to_numpy(float)[ok], y_arr[ok], envs[ok]  # (n, F)
        T, _ = self._targets(y_arr)  # (n, K)
        env_ids = [e for e in pd.unique(envs) if (envs == e).sum() >= self.min_env_size]
        if len(env_ids) < 2:
            raise ValueError(f"need >= 2 environments with >= {self.min_env_size} complete rows")
        F = Xa.shape[1]
        ic = np.zeros((len(env_ids), F, T.shape[1]))  # (E, F, K)
        slope, se = np.zeros_like(ic), np.zeros_like(ic)
        imp = np.full((len(env_ids), F), np.nan)  # (E, F)
        for i, e in enumerate(env_ids):
            m = envs == e
            ic[i] = _corr(_rank_cols(Xa[m]), _rank_cols(T[m]))
            slope[i], se[i] = _slopes(Xa[m], T[m])
            if self.importance:
                imp[i] = _lgbm_importance(Xa[m], y_arr[m], self.task, self.seed)

        # class weights: each target column counts by the feature's mean |IC| on it  (F, K)
        strength = np.abs(ic).mean(axis=0)
        w = np.where(strength.sum(axis=1, keepdims=True) > 0,
                     strength / np.maximum(strength.sum(axis=1, keepdims=True), 1e-300),
                     1.0 / T.shape[1])
        mean_ic_k = ic.mean(axis=0)  # (F, K)
        majority = np.sign(mean_ic_k)
        agree_k = (np.sign(ic) == majority[None]).mean(axis=0)  # (F, K)
        std_ic_k = ic.std(axis=0, ddof=1)
        sign_agreement = (w * agree_k).sum(axis=1)
        ic_mean = (w * mean_ic_k).sum(axis=1) if T.shape[1] == 1 else (w * np.abs(mean_ic_k)).sum(axis=1)
        ic_std = (w * std_ic_k).sum(axis=1)
        inv_p = np.minimum(1.0, _cochran_q(slope, se).min(axis=1) * T.shape[1])

        A = np.maximum(0.0, 2.0 * sign_agreement - 1.0)
        if self.method == "ic_stability":
            with np.errstate(divide="ignore", invalid="ignore"):
                stab = np.where(np.abs(ic_mean) > 0, np.abs(ic_mean) / (np.abs(ic_mean) + ic_std), 0.0)
        elif self.method == "importance_stability":
            mu, sd = np.nanmean(imp, axis=0), np.nanstd(imp, axis=0, ddof=1)
            stab = np.where(mu > 0, mu / (mu + np.nan_to_num(sd)), 0.0)
        else:
            stab = inv_p
        score = A * stab

        cols = [str(c) for c in X.columns]
        if T.shape[1] == 1:
            per_env_ic, per_env_sign = ic[:, :, 0], np.sign(ic[:, :, 0])
        else:
            per_env_ic = np.sqrt((ic**2).mean(axis=2))
            per_env_sign = np.sign(ic[:, np.arange(F), strength.argmax(axis=1)])
        columns: dict[str, np.ndarray] = {}
        columns.update({f"ic[{e}]": per_env_ic[i] for i, e in enumerate(env_ids)})
        columns.update({f"sign[{e}]": per_env_sign[i].astype(int) for i, e in enumerate(env_ids)})
        if self.importance:
            columns.update({f"imp[{e}]": imp[i] for i, e in enumerate(env_ids)})
            columns.update(imp_mean=np.nanmean(imp, axis=0), imp_std=np.nanstd(imp, axis=0, ddof=1))
        columns.update(ic_mean=ic_mean, ic_std=ic_std, sign_agreement=sign_agreement,
                       invariance_p=inv_p, score=score)
        rep = pd.DataFrame(columns, index=pd.Index(cols, name="feature"))
        rep["kept"], rep["reason"] = self._decide(rep, len(env_ids))

        self.environments_ = env_ids
        self.report_ = rep
        self.weights_ = rep["score"].clip(0.0, 1.0).rename("weight")
        self.support_ = rep["kept"].astype(bool).rename("support")
        self.selected_features_ = [c for c in X.columns if self.support_[str(c)]]
        self.n_features_in_ = F
        return self

    def _decide(self, rep: pd.DataFrame, n_envs: int) -> tuple[list[bool], list[str]]:
        kept, reasons = [], []
        for f, row in rep.iterrows():
            why = []
            if row["sign_agreement"] + 1e-12 < self.min_sign_agreement:
                why.append(f"IC sign agrees in {row['sign_agreement'] * n_envs:.0f}/{n_envs} envs "
                           f"(< {self.min_sign_agreement:.0%})")
            if self.min_invariance_p is not None and row["invariance_p"] < self.min_invariance_p:
                why.append(f"slope differs across envs (Q-test p={row['invariance_p']:.2g} "
                           f"< {self.min_invariance_p:g})")
            if abs(row["ic_mean"]) < self.min_abs_ic:
                why.append(f"|mean IC| {abs(row['ic_mean']):.3f} < {self.min_abs_ic:g}")
            if row["score"] < self.min_score:
                why.append(f"score {row['score']:.2f} < {self.min_score:g}")
            kept.append(not why)
            reasons.append("dropped: " + "; ".join(why) if why else
                           f"kept: IC {row['ic_mean']:+.3f} +- {row['ic_std']:.3f}, "
                           f"sign agreement {row['sign_agreement']:.0%}, "
                           f"slopes equal (p={row['invariance_p']:.2g}), score {row['score']:.2f}")
        if self.top_k is not None:
            order = rep["score"].to_numpy()
            ranked = [i for i in np.argsort(-order, kind="stable") if kept[i]]
            for i in ranked[self.top_k:]:
                kept[i] = False
                reasons[i] = f"dropped: outside top_k={self.top_k} by score ({order[i]:.2f})"
        return kept, reasons

    # -- using it ---------------------------------------------------------------------------
    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if not hasattr(self, "support_"):
            raise RuntimeError("RobustFeatureSelector is not fitted")
        return X[self.selected_features_]

    def fit_transform(self, X: pd.DataFrame, y: Any, environments: Sequence[Any]) -> pd.DataFrame:
        return self.fit(X, y, environments).transform(X)

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("task", "method", "min_sign_agreement",
                                              "min_invariance_p", "min_abs_ic", "min_score",
                                              "top_k", "importance", "min_env_size", "seed")}
