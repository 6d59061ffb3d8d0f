"""Two-sample drift tests on a reference batch against a current batch.

Shape legend: N rows (n_ref + n_cur pooled), F features, P permutations.

Each test takes two DataFrames with the same named feature columns (the reference, e.g. the
training slice, and the current window) and returns a :class:`BatchResult`: a per-feature table
sorted by effect (largest first) with ``statistic``, ``p_value``, ``drifted`` and ``effect``, plus
an overall verdict. NumPy arrays are accepted too and get columns ``f0 .. f{F-1}``.

- ``ks_test``         Kolmogorov-Smirnov per feature (scipy), Bonferroni across features.
- ``mmd_test``        RBF-kernel MMD^2 on all features jointly, permutation p-value.
- ``classifier_test`` a classifier told to separate ref from cur; cross-validated AUC.
- ``psi``             Population Stability Index per feature, quantile bins from the reference.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

TABLE_COLUMNS = ("statistic", "p_value", "drifted", "effect")


@dataclass
class BatchResult:
    """Outcome of one batch test.

    table      per-feature DataFrame (index = feature) with at least ``statistic``, ``p_value``,
               ``drifted`` and ``effect``; sorted by ``effect``, largest first.
    statistic  overall statistic (test-specific: max KS D, joint MMD^2, AUC, max PSI).
    p_value    overall p-value (NaN for PSI, which has none).
    drifted    overall verdict.
    """

    test: str
    table: pd.DataFrame
    statistic: float
    p_value: float
    drifted: bool
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted_features(self) -> list[str]:
        return [str(f) for f in self.table.index[self.table["drifted"].to_numpy(bool)]]

    def summary(self) -> str:
        verdict = "DRIFT" if self.drifted else "no drift"
        named = ", ".join(self.drifted_features) or "none"
        return f"{self.test}: {verdict} (stat={self.statistic:.4g}, p={self.p_value:.3g}); features: {named}"


# -- helpers ---------------------------------------------------------------------------------
def _frames(ref: Any, cur: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    def as_frame(a: Any) -> pd.DataFrame:
        if isinstance(a, pd.DataFrame):
            return a
        if isinstance(a, pd.Series):
            return a.to_frame(name=a.name if a.name is not None else "f0")
        arr = np.asarray(a, dtype=float)
        arr = arr.reshape(-1, 1) if arr.ndim == 1 else arr
        return pd.DataFrame(arr, columns=[f"f{i}" for i in range(arr.shape[1])])

    r, c = as_frame(ref), as_frame(cur)
    missing = [col for col in r.columns if col not in c.columns]
    if missing:
        raise KeyError(f"current batch lacks reference columns {missing}")
    if r.shape[1] == 0:
        raise ValueError("no feature columns")
    return r.astype(float), c[list(r.columns)].astype(float)


def _finish(test: str, table: pd.DataFrame, statistic: float, p_value: float, drifted: bool,
            **info: Any) -> BatchResult:
    table = table.sort_values("effect", ascending=False, kind="stable")
    table["drifted"] = table["drifted"].astype(bool)
    return BatchResult(test, table, float(statistic), float(p_value), bool(drifted), dict(info))


def _adjust(p: np.ndarray, correction: str) -> np.ndarray:
    if correction == "bonferroni":
        return np.minimum(1.0, p * len(p))
    if correction == "none":
        return p.copy()
    raise ValueError(f"correction must be 'bonferroni' or 'none', got {correction!r}")


# -- Kolmogorov-Smirnov ----------------------------------------------------------------------
def ks_test(ref: Any, cur: Any, alpha: float = 0.05, correction: str = "bonferroni") -> BatchResult:
    """Two-sample KS test per feature (``scipy.stats.ks_2samp``, two-sided), NaN dropped per feature.

    ``p_adjusted`` applies the correction across the F features ("bonferroni": min(1, F p));
    a feature drifted when ``p_adjusted < alpha``; the batch drifted when any feature did (with
    Bonferroni this controls the family-wise false-alarm rate at ``alpha``). Effect = KS D.
    """
    r, c = _frames(ref, cur)
    rows = []
    for col in r.columns:
        a, b = r[col].dropna().to_numpy(), c[col].dropna().to_numpy()
        if len(a) == 0 or len(b) == 0:
            rows.append((col, np.nan, 1.0))
            continue
        res = stats.ks_2samp(a, b)
        rows.append((col, float(res.statistic), float(res.pvalue)))
    table = pd.DataFrame(rows, columns=["feature", "statistic", "p_value"]).set_index("feature")
    table["p_adjusted"] = _adjust(table["p_value"].to_numpy(), correction)
    table["drifted"] = table["p_adjusted"] < alpha
    table["effect"] = table["statistic"].fillna(0.0)
    p_overall = float(table["p_adjusted"].min())
    return _finish("ks", table, table["effect"].max(), p_overall, table["drifted"].any(),
                   alpha=alpha, correction=correction)


# -- MMD -------------------------------------------------------------------------------------
def median_bandwidth(Z: np.ndarray) -> float:
    """Median heuristic: the median pairwise Euclidean distance of the pooled sample (> 0)."""
    # Z: (N, F)
    sq = np.sum(Z * Z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * Z @ Z.T, 0.0)  # (N, N)
    iu = np.triu_indices(len(Z), k=1)
    med = float(np.sqrt(np.median(d2[iu]))) if len(iu[0]) else 0.0
    return med if med > 0 else 1.0


def rbf_kernel(Z: np.ndarray, bandwidth: float) -> np.ndarray:
    """K[i, j] = exp(-||z_i - z_j||^2 / (2 bandwidth^2)); Z (N, F) -> K (N, N)."""
    sq = np.sum(Z * Z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * Z @ Z.T, 0.0)
    return np.exp(-d2 / (2.0 * bandwidth**2))


def mmd2_unbiased(K: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 (Gretton et al. 2012, eq. 3) for one or many labellings of a pooled sample.

    K (N, N) kernel matrix; labels (N,) or (N, P) with 1 = reference, 0 = current. Returns (P,).
    All P labellings are scored with one matrix product, which is what makes permutations cheap.
    """
    S = labels.reshape(len(K), -1).astype(float)  # (N, P)
    diag = np.diag(K)[:, None]  # (N, 1)
    KS = K @ S  # (N, P)
    row = K.sum(axis=1)[:, None]  # (N, 1)
    n_x = S.sum(axis=0)
    n_y = len(K) - n_x
    s_xx = np.sum(S * KS, axis=0) - np.sum(S * diag, axis=0)
    s_xy = np.sum(S * row, axis=0) - np.sum(S * KS, axis=0)
    s_yy = K.sum() - 2.0 * s_xy - np.sum(S * KS, axis=0) - (np.trace(K) - np.sum(S * diag, axis=0))
    return s_xx / (n_x * (n_x - 1)) + s_yy / (n_y * (n_y - 1)) - 2.0 * s_xy / (n_x * n_y)


def _perm_pvalue(observed: float, perms: np.ndarray) -> float:
    return float((1 + np.sum(perms >= observed)) / (1 + len(perms)))


def mmd_test(ref: Any, cur: Any, n_permutations: int = 200, seed: int = 0, alpha: float = 0.05,
             max_samples: int = 500) -> BatchResult:
    """Kernel two-sample test: unbiased RBF MMD^2 with a permutation p-value.

    Features are standardised with the *reference* mean and std (so no feature dominates by scale);
    rows with any NaN are dropped; each side is subsampled (seeded) to ``max_samples`` rows to keep
    the (N, N) kernel small. Bandwidth: the median heuristic on the pooled sample.
    p = (1 + #{permuted MMD^2 >= observed}) / (1 + n_permutations), so p >= 1 / (1 + P) > 0.

    Per-feature attribution: the univariate MMD^2 of each feature alone (its own median
    bandwidth; ``effect``) with its own permutation p-value on the *same* permutations. A feature is
    ``drifted`` only when the joint test rejects at ``alpha`` and its own p < ``alpha``
    (gatekeeping: no Bonferroni, which with P permutations could never go below 1/(1+P)).
    """
    if n_permutations < 1:
        raise ValueError("n_permutations must be >= 1")
    r, c = _frames(ref, cur)
    rng = np.random.default_rng(seed)
    X, Y = r.dropna().to_numpy(), c.dropna().to_numpy()
    if len(X) < 2 or len(Y) < 2:
        raise ValueError("mmd_test needs at least 2 complete rows on each side")
    X = X[np.sort(rng.choice(len(X), max_samples, replace=False))] if len(X) > max_samples else X
    Y = Y[np.sort(rng.choice(len(Y), max_samples, replace=False))] if len(Y) > max_samples else Y
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    Z = (np.vstack([X, Y]) - mu) / sd  # (N, F)
    labels = np.r_[np.ones(len(X)), np.zeros(len(Y))]  # (N,)
    perms = np.stack([rng.permutation(labels) for _ in range(n_permutations)], axis=1)  # (N, P)

    bw = median_bandwidth(Z)
    K = rbf_kernel(Z, bw)
    observed = float(mmd2_unbiased(K, labels)[0])
    null = mmd2_unbiased(K, perms)
    p_joint = _perm_pvalue(observed, null)
    drifted = p_joint < alpha

    rows = []
    for j, col in enumerate(r.columns):
        zj = Z[:, j : j + 1]
        Kj = rbf_kernel(zj, median_bandwidth(zj))
        obs_j = float(mmd2_unbiased(Kj, labels)[0])
        p_j = _perm_pvalue(obs_j, mmd2_unbiased(Kj, perms))
        rows.append((col, obs_j, p_j, drifted and p_j < alpha, obs_j))
    table = pd.DataFrame(rows, columns=["feature", *TABLE_COLUMNS]).set_index("feature")
    return _finish("mmd", table, observed, p_joint, drifted, alpha=alpha, bandwidth=bw,
                   n_permutations=n_permutations, null=null, n_ref=len(X), n_cur=len(Y))


# -- classifier two-sample test --------------------------------------------------------------
def auc_null_pvalue(auc: float, n0: int, n1: int) -> float:
    """One-sided p-value of AUC > 0.5 under the null of identical score distributions.

    Mann-Whitney normal approximation: AUC ~ N(0.5, (n0 + n1 + 1) / (12 n0 n1)) without ties.
    """
    se = np.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1))
    return float(stats.norm.sf((auc - 0.5) / se))


def classifier_test(ref: Any, cur: Any, cv: int = 5, seed: int = 0, alpha: float = 0.05,
                    n_repeats: int = 3, n_estimators: int = 100, n_jobs: int = 1) -> BatchResult:
    """Classifier two-sample test (C2ST): can a model tell reference rows from current rows?

    Rows are labelled ref = 0, cur = 1; a small LightGBM classifier (NaN-native, seeded,
    deterministic, ``n_jobs`` threads; sklearn's HistGradientBoosting was ~20x slower here because
    its OpenMP pool oversubscribes a shared machine) is cross-validated with ``cv`` stratified
    shuffled folds, and the
    out-of-fold probabilities give one pooled ROC AUC (``statistic``). Under no drift AUC = 0.5;
    the p-value is the Mann-Whitney normal approximation (see ``auc_null_pvalue``), one-sided.
    Approximate, because out-of-fold scores come from ``cv`` slightly different models.

    Per-feature attribution: permutation importance on each held-out fold, i.e. the drop in that
    fold's AUC when the feature's column is shuffled (mean over ``n_repeats`` shuffles); ``effect``
    is the mean drop over folds. Its ``p_value`` is a one-sided t-test of the per-fold drops > 0
    (``cv - 1`` degrees of freedom; rough, since folds share training rows). A feature is
    ``drifted`` when the whole test rejects at ``alpha`` and its own p < ``alpha``.
    """
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    r, c = _frames(ref, cur)
    X = np.vstack([r.to_numpy(), c.to_numpy()])  # (N, F)
    y = np.r_[np.zeros(len(r), int), np.ones(len(c), int)]
    if min(len(r), len(c)) < cv:
        raise ValueError(f"classifier_test needs at least cv={cv} rows on each side")
    rng = np.random.default_rng(seed)
    oof = np.zeros(len(y))
    drops = np.zeros((cv, X.shape[1]))  # (cv, F)
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed).split(X, y)
    for k, (tr, te) in enumerate(folds):
        model = lgb.LGBMClassifier(n_estimators=n_estimators, learning_rate=0.1, num_leaves=15,
                                   min_child_samples=10, random_state=seed, n_jobs=n_jobs,
                                   deterministic=True, force_row_wise=True, verbose=-1)
        model.fit(X[tr], y[tr])
        oof[te] = model.predict_proba(X[te])[:, 1]
        base = roc_auc_score(y[te], oof[te])
        for j in range(X.shape[1]):
            aucs = []
            for _ in range(n_repeats):
                Xp = X[te].copy()
                Xp[:, j] = Xp[rng.permutation(len(te)), j]
                aucs.append(roc_auc_score(y[te], model.predict_proba(Xp)[:, 1]))
            drops[k, j] = base - float(np.mean(aucs))
    auc = float(roc_auc_score(y, oof))
    p_joint = auc_null_pvalue(auc, len(r), len(c))
    drifted = p_joint < alpha

    mean, sd = drops.mean(axis=0), drops.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / np.sqrt(cv))
    p_feat = np.where(sd > 0, stats.t.sf(t, df=cv - 1), np.where(mean > 0, 0.0, 1.0))
    table = pd.DataFrame({"statistic": mean, "p_value": p_feat, "importance_std": sd},
                         index=pd.Index(r.columns, name="feature"))
    table["drifted"] = drifted & (table["p_value"] < alpha) & (table["statistic"] > 0)
    table["effect"] = table["statistic"]
    return _finish("classifier", table, auc, p_joint, drifted, alpha=alpha, auc=auc, cv=cv)


# -- PSI -------------------------------------------------------------------------------------
def psi(ref: Any, cur: Any, bins: int = 10, threshold: float = 0.2, eps: float = 1e-4) -> BatchResult:
    """Population Stability Index per feature: sum_b (c_b - r_b) ln(c_b / r_b).

    Bin edges are the reference's quantiles (``bins`` equal-frequency bins, duplicates merged,
    outer edges open to +-inf, so current values outside the reference range are still counted);
    r_b, c_b are the bin shares of each batch, floored at ``eps`` so empty bins stay finite.
    NaN dropped per feature. Usual reading: PSI < 0.1 no meaningful change, 0.1-0.25 moderate
    shift (watch), > 0.25 major shift. A feature is ``drifted`` when PSI > ``threshold``
    (default 0.2, a common middle ground). PSI is a descriptive index with no p-value: the
    ``p_value`` column is NaN. Effect = PSI.
    """
    r, c = _frames(ref, cur)
    rows = []
    for col in r.columns:
        a, b = r[col].dropna().to_numpy(), c[col].dropna().to_numpy()
        if len(a) == 0 or len(b) == 0:
            rows.append((col, np.nan))
            continue
        inner = np.unique(np.quantile(a, np.linspace(0, 1, bins + 1)[1:-1]))
        # a value equal to an edge goes to the bin on its right, the same for both batches
        ra = np.bincount(np.searchsorted(inner, a, side="right"), minlength=len(inner) + 1) / len(a)
        cb = np.bincount(np.searchsorted(inner, b, side="right"), minlength=len(inner) + 1) / len(b)
        ra, cb = np.maximum(ra, eps), np.maximum(cb, eps)
        rows.append((col, float(np.sum((cb - ra) * np.log(cb / ra)))))
    table = pd.DataFrame(rows, columns=["feature", "statistic"]).set_index("feature")
    table["p_value"] = np.nan
    table["drifted"] = table["statistic"] > threshold
    table["effect"] = table["statistic"].fillna(0.0)
    return _finish("psi", table, table["effect"].max(), np.nan, table["drifted"].any(),
                   threshold=threshold, bins=bins)


