"""Drift-aware walk-forward: three retraining policies inside the foundation's calendar test blocks.

Shape legend: N rows (trading days), F features.

Policies (issue 4, item 3), all on the blocks of ``plan_folds`` / ``iter_walk_forward``:
  none    fit once on the first fold's purged train/val slice; the weights stay frozen for every
          later test year.
  yearly  the foundation's schedule: refit at each test-year start on all earlier data.
  drift   like yearly, and inside each block a ``tidewise.drift`` streaming detector is updated
          day by day; when it fires on day t the model is refitted on the rows whose labels are
          known by t, and rows t+1.. are predicted with the new weights.

Timing (no look-ahead). Row t's features are known at day t's close; its label
y_t = log(close_{t+h} / close_t) only at day t+h. So on day t the residual detector is fed the
residual of row t-h (its label has just arrived), and a refit on day t uses rows <= t-h: the tail
of those rows is a fresh validation slice and the training rows end h rows before it (purged).
Predictions are made one segment at a time (the rest of the block with the current weights, then
overwritten from t+1 after a refit). Every Forecaster predicts row r from inputs up to r alone,
so this gives the same numbers as predicting day by day with one predict call per fit.

A set-up is (feature set, policy): feature set "all", or "robust" = the columns a
``RobustFeatureSelector(task="regression")`` keeps when fitted on the training rows of that fit
only, with ``make_time_environments`` blocks over them as environments.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from tidewise.drift import MultiFeatureDetector, RobustFeatureSelector, create_detector, ks_test
from tidewise.drift import make_time_environments
from tidewise.evaluation.pipeline import Prepared, RunConfig, prepare
from tidewise.evaluation.walk_forward import fold_from_rows, iter_walk_forward, split_fit_rows
from tidewise.models.base import PRED_COLUMNS, FoldData, Forecaster
from tidewise.models.registry import create

POLICIES = ("none", "yearly", "drift")
FEATURE_SETS = ("all", "robust")
SIGNALS = ("abs_residual", "sq_residual", "features")
DEFAULT_SETUPS: tuple[tuple[str, str], ...] = (("robust", "drift"), ("all", "yearly"), ("all", "none"))
BASELINE_SETUP = ("all", "yearly")


@dataclass(frozen=True)
class DriftTrigger:
    """What the drift policy watches, and how it reacts.

    detector  a streaming detector name from ``tidewise.drift.DETECTORS`` with real input.
    signal    "abs_residual" |y - ret_hat| or "sq_residual" (y - ret_hat)^2, both divided by their
              mean on the current fit's validation tail, so the stream is ~1 whatever the asset's
              volatility (ADWIN's bound has a range term that assumes values of order 1);
              or "features": a MultiFeatureDetector on the features z-scored with the fit's
              training rows (``features`` picks columns; empty = all).
    cooldown  fewest rows between two refits, so one change does not trigger a burst of refits.
    attribution_window  rows of the previous fit's tail compared (KS per feature) with the rows
              since it, to name the features that moved when a residual detector fires.
    """

    detector: str = "adwin"
    params: dict[str, Any] = field(default_factory=dict)
    signal: str = "abs_residual"
    features: tuple[str, ...] = ()
    cooldown: int = 21
    attribution_window: int = 252

    def __post_init__(self) -> None:
        from tidewise.drift import DETECTORS

        entry = DETECTORS.get(self.detector)
        if entry is None or entry.kind != "stream" or entry.input != "real":
            ok = [n for n, e in DETECTORS.items() if e.kind == "stream" and e.input == "real"]
            raise ValueError(f"detector must be one of {', '.join(ok)}; got {self.detector!r}")
        if self.signal not in SIGNALS:
            raise ValueError(f"signal must be one of {', '.join(SIGNALS)}; got {self.signal!r}")


class FeatureMaskedForecaster(Forecaster):
    """Any registered Forecaster restricted to a column subset; fit/predict see only those columns."""

    def __init__(self, base: Forecaster, columns: Sequence[str]) -> None:
        super().__init__(**base.init_kwargs)
        if not columns:
            raise ValueError("FeatureMaskedForecaster needs at least one column")
        self.base, self.columns = base, list(columns)
        self.name, self.family, self.outputs = base.name, base.family, base.outputs

    def _view(self, data: FoldData) -> FoldData:
        return replace(data, X=data.X[self.columns])

    def fit(self, data: FoldData) -> "FeatureMaskedForecaster":
        self.base.fit(self._view(data))
        return self

    def predict(self, data: FoldData, rows: np.ndarray) -> pd.DataFrame:
        return self.base.predict(self._view(data), rows)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = self.base.get_state()
        return {"columns": self.columns, "base": meta}, arrays

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.columns = list(meta["columns"])
        self.base.set_state(meta["base"], arrays)

    def n_params(self) -> int:
        return self.base.n_params()

    def flops_per_sample(self) -> float | None:
        return self.base.flops_per_sample()


def select_robust(fold: FoldData, n_envs: int = 4, fallback_k: int = 3,
                  targets: tuple[str, ...] = ("ret", "var"),
                  **selector_params: Any) -> tuple[list[str], dict[str, str], RobustFeatureSelector]:
    """Fit a RobustFeatureSelector per target on the fold's TRAINING rows only (n_envs time blocks).

    The forecasters are multi-task, so a feature is kept when its relation to ANY of `targets` is
    stable: selecting on the return alone dropped every volatility feature (msft QLIKE -7.18 vs
    -7.62). Variance enters as log(var). Importances are off (unused by "ic_stability", n_envs fits
    each). If nothing passes the gates, the `fallback_k` best by score are kept, and say so.
    """
    rows = fold.train
    X = fold.X.iloc[rows]
    kept: list[str] = []
    reasons: dict[str, str] = {}
    sel = None
    for target in targets:
        y = fold.y[target].iloc[rows]
        if target == "var":
            y = np.log(np.maximum(y, 0.01 * float(y.mean())))
        ok = (y.notna() & X.notna().all(axis=1)).to_numpy()
        envs = make_time_environments(int(ok.sum()), n_envs)
        sel = RobustFeatureSelector(task="regression", **{"importance": False, **selector_params})
        sel.fit(X[ok], y[ok], envs)
        for f, why in sel.report_["reason"].items():
            f = str(f)
            line = f"{target}: {why}"
            reasons[f] = line if f not in reasons else (reasons[f] + "; " + line)
        kept += [f for f in sel.selected_features_ if f not in kept]
    if not kept:
        kept = list(sel.report_["score"].sort_values(ascending=False, kind="stable").index[:fallback_k])
        for f in kept:
            reasons[f] = "fallback (no feature passed the gates): " + reasons[f]
    kept = [c for c in fold.X.columns if c in kept]
    return kept, reasons, sel


def masked_fold(prep: Prepared, train: np.ndarray, val: np.ndarray, end: int, test: np.ndarray,
                horizon: int, fold_id: int, meta: dict[str, Any]) -> FoldData:
    """A FoldData over rows [0, end) whose targets are visible only on ``train`` and ``val``."""
    assert end == int(test[-1]) + 1
    return fold_from_rows(prep.X, prep.y, prep.returns, train, val, test, horizon, fold_id, meta)


def _digest(model: Forecaster) -> str:
    """Fingerprint of the fitted weights (first 16 hex digits of a SHA-256 over the model state)."""
    import hashlib
    import json

    meta, arrays = model.get_state()
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()[:16]


@dataclass
class SetupRun:
    """One set-up's test predictions (long format, as pipeline.evaluate) and its fit log."""

    name: str
    feature_set: str
    policy: str
    predictions: pd.DataFrame
    fits: list[dict[str, Any]]
    stream: pd.DataFrame = field(default_factory=pd.DataFrame)  # what the detector was fed, per day

    @property
    def n_fits(self) -> int:
        return len(self.fits)

    @property
    def fit_seconds(self) -> float:
        return float(sum(f["seconds"] for f in self.fits))


class _Runner:
    """Runs one (base model, feature set, policy) through the walk-forward blocks."""

    def __init__(self, prep: Prepared, base_model: str, feature_set: str, policy: str,
                 config: RunConfig, trigger: DriftTrigger, n_envs: int,
                 selector_params: dict[str, Any] | None) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}; got {policy!r}")
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"feature set must be one of {', '.join(FEATURE_SETS)}; got {feature_set!r}")
        self.prep, self.base_model, self.feature_set, self.policy = prep, base_model, feature_set, policy
        self.config, self.trigger, self.n_envs = config, trigger, n_envs
        self.selector_params = dict(selector_params or {})
        self.wf = config.walk_forward()
        self.h = self.wf.horizon
        self.name = f"{base_model}|{feature_set}|{policy}"
        self.fits: list[dict[str, Any]] = []
        self.fed: list[tuple[int, int, float]] = []  # (day t, row whose value was fed, value)

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, fold: FoldData, reason: str, as_of: int, first_row: int,
            drifted: Sequence[str] = ()) -> Forecaster:
        t0 = time.perf_counter()
        base = create(self.base_model, seed=self.config.seed,
                      **self.config.model_params.get(self.base_model, {}))
        kept, reasons = [str(c) for c in fold.X.columns], {}
        if self.feature_set == "robust":
            kept, reasons, _ = select_robust(fold, self.n_envs, **self.selector_params)
            model: Forecaster = FeatureMaskedForecaster(base, kept)
        else:
            model = base
        model.fit(fold)
        idx = self.prep.X.index
        self.fits.append({
            "setup": self.name, "fold": int(fold.fold_id), "year": int(fold.meta["year"]),
            "reason": reason, "as_of": str(idx[as_of].date()),
            "first_prediction": str(idx[first_row].date()),
            "last_label_row": str(idx[int(fold.fit_rows.max())].date()),
            "n_train": int(len(fold.train)), "n_val": int(len(fold.val)),
            "seconds": time.perf_counter() - t0, "n_features": len(kept), "kept": kept,
            "selector": reasons, "drifted_features": list(drifted), "weights_sha256": _digest(model)})
        return model

    # -- the walk-forward ---------------------------------------------------------------------
    def run(self, progress: Callable[[str], None] | None = None) -> SetupRun:
        p = self.prep
        next_ret = p.returns.shift(-1)
        parts, model, first = [], None, None
        for fold in iter_walk_forward(p.X, p.y, p.returns, self.wf):
            if progress:
                progress(f"{self.name}: {fold.meta['year']}")
            test = fold.test
            if model is None or self.policy != "none":
                model = self.fit(fold, "initial" if model is None else "scheduled (yearly)",
                                 as_of=test[0] - 1, first_row=test[0])
                first = fold if first is None else first
                view = fold
            else:  # frozen weights: targets visible only where the first fit saw them
                view = masked_fold(p, first.train, first.val, test[-1] + 1, test, self.h,
                                   fold.fold_id, fold.meta)
            pred = model.predict(view, test).reindex(columns=list(PRED_COLUMNS))  # (len(test), 6)
            if self.policy == "drift":
                pred = self.watch_block(fold, model, pred)
            truth = p.y.iloc[test]
            pred = pred.assign(y_ret=truth["ret"].to_numpy(), y_dir=truth["dir"].to_numpy(),
                               y_var=truth["var"].to_numpy(), next_ret=next_ret.iloc[test].to_numpy(),
                               model=self.name, fold=fold.fold_id)
            parts.append(pred.rename_axis("date").reset_index())
        fed = np.array(self.fed, dtype=float).reshape(-1, 3)
        stream = pd.DataFrame({"day": p.X.index[fed[:, 0].astype(int)],
                               "row": p.X.index[fed[:, 1].astype(int)], "value": fed[:, 2]})
        return SetupRun(self.name, self.feature_set, self.policy, pd.concat(parts, ignore_index=True),
                        self.fits, stream)

    def _detector(self, fold: FoldData, model: Forecaster) -> tuple[Any, Any]:
        """A fresh detector and the transform from a day's observation to its stream value."""
        tr = self.trigger
        if tr.signal == "features":
            cols = list(tr.features) or [str(c) for c in fold.X.columns]
            ref = fold.X.iloc[fold.train][cols]
            mu, sd = ref.mean().to_numpy(), ref.std().replace(0.0, 1.0).to_numpy()
            return MultiFeatureDetector(cols, tr.detector, tr.params), (cols, mu, sd)
        ref_rows = fold.val if len(fold.val) else fold.train
        resid = fold.y["ret"].iloc[ref_rows].to_numpy() - model.predict(fold, ref_rows)["ret"].to_numpy()
        resid = resid[np.isfinite(resid)]
        power = 1 if tr.signal == "abs_residual" else 2
        scale = float(np.mean(np.abs(resid) ** power)) if len(resid) else 1.0
        return create_detector(tr.detector, **tr.params), (power, scale if scale > 0 else 1.0)

    def watch_block(self, fold: FoldData, model: Forecaster, pred: pd.DataFrame) -> pd.DataFrame:
        """Day-by-day detector inside one test block; refit on firing (see the module docstring)."""
        p, h, tr, test = self.prep, self.h, self.trigger, fold.test
        y_ret = p.y["ret"].to_numpy()
        ret_hat = pred["ret"].to_numpy().copy()  # (len(test),) the forecast made on each day
        det, how = self._detector(fold, model)
        seg_start, last_fit, fit_rows = test[0], test[0] - 1, fold.fit_rows
        for t in test[:-1]:  # a firing on the block's last day would predict nothing
            if tr.signal == "features":
                cols, mu, sd = how
                z = (p.X.iloc[t][cols].to_numpy(float) - mu) / sd
                det.update(z)
                self.fed.append((t, t, float(np.abs(z).max())))
            else:
                s = t - h  # the newest row whose label is known on day t
                if s < seg_start or not np.isfinite(y_ret[s]):
                    continue
                power, scale = how
                value = abs(y_ret[s] - ret_hat[s - test[0]]) ** power / scale
                det.update(value)
                self.fed.append((t, s, value))
            if not det.drift_detected or t - last_fit < tr.cooldown:
                continue
            refit = self._refit_fold(fold, t)
            if refit is None:
                continue
            drifted = (list(det.drifted_features) if tr.signal == "features"
                       else self._attribute(fit_rows, seg_start, t))
            model = self.fit(refit, f"drift: {tr.detector} on {tr.signal}", as_of=t, first_row=t + 1,
                             drifted=drifted)
            rest = test[t + 1 - test[0]:]
            new = model.predict(refit, rest).reindex(columns=list(PRED_COLUMNS))
            pred.iloc[t + 1 - test[0]:] = new.to_numpy()
            ret_hat[t + 1 - test[0]:] = new["ret"].to_numpy()
            seg_start, last_fit, fit_rows = t + 1, t, refit.fit_rows
            det, how = self._detector(refit, model)
        return pred

    def _refit_fold(self, fold: FoldData, t: int) -> FoldData | None:
        """Rows whose labels are known on day t (<= t - h); fresh purged validation tail."""
        wf, h = self.wf, self.h
        fit = np.arange(0, t - h + 1)
        if wf.max_train_rows:
            fit = fit[-wf.max_train_rows:]
        train, val = split_fit_rows(fit, wf.val_rows, h)
        if len(train) < wf.min_train_rows:
            return None
        assert max(train[-1], val[-1] if len(val) else 0) + h <= t  # every label used is known on day t
        return masked_fold(self.prep, train, val, fold.test[-1] + 1, fold.test, h, fold.fold_id,
                           fold.meta)

    def _attribute(self, fit_rows: np.ndarray, seg_start: int, t: int) -> list[str]:
        """Features whose distribution since the last fit differs from the last fit's tail (KS)."""
        ref = self.prep.X.iloc[fit_rows[-self.trigger.attribution_window:]]
        cur = self.prep.X.iloc[seg_start: t + 1]
        if len(cur) < 10:
            return []
        return ks_test(ref, cur).drifted_features


def run_setup(prep: Prepared, base_model: str, feature_set: str, policy: str,
              config: RunConfig = RunConfig(models=()), trigger: DriftTrigger = DriftTrigger(), *,
              n_envs: int = 4, selector_params: dict[str, Any] | None = None,
              progress: Callable[[str], None] | None = None) -> SetupRun:
    """Walk-forward predictions of one set-up (model name "<base>|<feature set>|<policy>")."""
    return _Runner(prep, base_model, feature_set, policy, config, trigger, n_envs,
                   selector_params).run(progress)


_DM = {"ret": ("ret", "y_ret", "squared_error"), "dir": ("p_up", "y_dir", "log_loss_elementwise"),
       "var": ("var", "y_var", "qlike_loss")}
_SKILL = ("accuracy", "auc", "log_loss", "ic", "ic_lo", "ic_hi", "r2_oos", "qlike", "sharpe_ls")


def score_setups(runs: Sequence[SetupRun], baseline: str, *, horizon: int = 1, cost_bps: float = 5.0,
                 n_boot: int = 300, seed: int = 0) -> pd.DataFrame:
    """Leaderboard-compatible skill per set-up (scoring.score_model), one-sided DM p-values against
    ``baseline`` (small = the set-up's loss is lower; NaN on the baseline's own row), compute cost."""
    from tidewise.evaluation import metrics as M
    from tidewise.evaluation.scoring import score_model
    from tidewise.evaluation.significance import diebold_mariano

    frames = {r.name: r.predictions.dropna(subset=["y_ret"]).sort_values("date").set_index("date")
              for r in runs}
    base = frames[baseline]
    rows = {}
    for r in runs:
        f = frames[r.name]
        skill = score_model(f.reset_index(), cost_bps=cost_bps, n_boot=n_boot, seed=seed)
        row: dict[str, Any] = {"feature_set": r.feature_set, "policy": r.policy,
                               **{k: skill.get(k, np.nan) for k in _SKILL}}
        for task, (col, ycol, loss) in _DM.items():
            joined = f[[col, ycol]].join(base[[col]].add_suffix("_base"), how="inner").dropna()
            if r.name == baseline or joined.empty:
                row[f"dm_{task}_p"] = np.nan
                continue
            fn = getattr(M, loss)
            dm = diebold_mariano(fn(joined[ycol], joined[col]), fn(joined[ycol], joined[f"{col}_base"]),
                                 h=horizon)
            row[f"dm_{task}_p"] = dm["p_better"]
        row.update(dm_vs=baseline, n_fits=r.n_fits, n_refits=r.n_fits - 1,
                   n_drift_refits=sum(x["reason"].startswith("drift") for x in r.fits),
                   fit_seconds=r.fit_seconds, mean_features=float(np.mean([x["n_features"] for x in r.fits])),
                   n_test=len(f))
        rows[r.name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "setup"
    return table


@dataclass
class SetupComparison:
    table: pd.DataFrame          # one row per set-up: skill, DM p-values, compute
    predictions: pd.DataFrame    # long format, every set-up
    fits: list[dict[str, Any]]   # every fit of every set-up, in order
    baseline: str


def evaluate_setups(source: Any, base_model: str = "linear",
                    setups: Sequence[tuple[str, str]] = DEFAULT_SETUPS, *,
                    config: RunConfig | None = None, trigger: DriftTrigger = DriftTrigger(),
                    n_envs: int = 4, selector_params: dict[str, Any] | None = None,
                    prepared: Prepared | None = None, n_boot: int = 300,
                    progress: Callable[[str], None] | None = None) -> SetupComparison:
    """Run every set-up (the all|yearly baseline is added if missing) and score them."""
    config = config or RunConfig(data=str(source), models=(base_model,))
    prep = prepared if prepared is not None else prepare(source, config)
    wanted = list(dict.fromkeys([tuple(s) for s in setups] + [BASELINE_SETUP]))
    runs = [run_setup(prep, base_model, fs, pol, config, trigger, n_envs=n_envs,
                      selector_params=selector_params, progress=progress) for fs, pol in wanted]
    baseline = f"{base_model}|{BASELINE_SETUP[0]}|{BASELINE_SETUP[1]}"
    table = score_setups(runs, baseline, horizon=config.horizon, cost_bps=config.cost_bps,
                         n_boot=n_boot, seed=config.seed)
    return SetupComparison(table, pd.concat([r.predictions for r in runs], ignore_index=True),
                           [f for r in runs for f in r.fits], baseline)


def compare_setups(source: Any, base_model: str = "linear",
                   setups: Sequence[tuple[str, str]] = DEFAULT_SETUPS, **kwargs: Any) -> pd.DataFrame:
    """The comparison table: accuracy, AUC, IC, R2oos, QLIKE, one-sided Diebold-Mariano p-values
    (squared error of returns, log loss of direction, QLIKE) against all|yearly, n_refits and
    fit seconds, one row per set-up. Keyword arguments go to ``evaluate_setups``."""
    return evaluate_setups(source, base_model, setups, **kwargs).table
