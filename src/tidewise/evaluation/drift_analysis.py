"""Drift analysis of one price series: a detector timeline, year-on-year batch tests, feature stability.

Shape legend: N rows (trading days), F features, E environments (calendar years).

``analyze_drift`` returns one JSON-able dict (written as ``drift.json`` into a run folder; the
HTML report and ``tidewise drift`` read it back):

- ``timeline``  streaming-detector firings, in order. Three streams, each fed one value per day
  from row ``burn_in`` on and scaled by the burn-in rows only (so every value uses data <= t):
  "returns" r_t / sd (a change of mean return), "volatility" |r_t| / mean|r| (a change of
  volatility), "features" each feature z-scored (a MultiFeatureDetector; it names the features).
  Each firing says what moved: the last ``recent`` rows against the ``reference`` rows before them.
- ``batch``     every calendar year against the previous one: KS (Bonferroni), PSI (> 0.2) and MMD
  (permutation p) per feature; ``moved`` = features flagged by at least two of the three tests,
  largest effect first. The tests assume independent rows; rolling-window features (vol_63,
  mom_63) are strongly autocorrelated, so their p-values are optimistic and they "move" in
  years where nothing changed (seen on a driftless synthetic series): read them with care.
- ``stability`` a RobustFeatureSelector (regression on the h-day return) with one environment per
  calendar year: per-year IC, sign agreement, slope invariance p, kept and why. This is a
  description of the whole history (it sees every year), not an input of any forecast.
- ``setups``    optional: the retraining comparison table and every fit (refit dates, reasons,
  features kept and features that moved), from ``retraining.evaluate_setups``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from tidewise.drift import MultiFeatureDetector, RobustFeatureSelector, create_detector
from tidewise.drift import ks_test, mmd_test, psi
from tidewise.evaluation.pipeline import Prepared, RunConfig, prepare

SCHEMA_VERSION = 1


def jsonable(obj: Any) -> Any:
    """Plain JSON types only: numpy scalars unwrapped, NaN/inf -> None, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray, pd.Index)):
        return [jsonable(v) for v in list(obj)]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, pd.Timestamp):
        return str(obj.date())
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


# -- streaming timeline ------------------------------------------------------------------------
def _shift_text(stream: str, before: np.ndarray, recent: np.ndarray, names: Sequence[str]) -> tuple[str, dict]:
    """What moved: means of the recent rows against the reference rows before them."""
    if stream == "returns":
        a, b = float(np.mean(before)), float(np.mean(recent))
        return f"mean daily return {a:+.4f} -> {b:+.4f}", {"returns": b - a}
    if stream == "volatility":
        a, b = (float(np.std(x) * np.sqrt(252)) for x in (before, recent))
        return f"annualised volatility {a:.1%} -> {b:.1%}", {"volatility": b - a}
    sd = np.where(before.std(axis=0) > 0, before.std(axis=0), 1.0)  # before, recent (n, F)
    shift = (recent.mean(axis=0) - before.mean(axis=0)) / sd  # (F,) mean change in reference sds
    ratio = recent.std(axis=0) / sd  # (F,) spread change
    order = np.argsort(-np.maximum(np.abs(shift), np.abs(np.log(np.maximum(ratio, 1e-12)))))
    text = "; ".join(f"{names[j]} mean {shift[j]:+.1f} sd, sd x{ratio[j]:.2g}" for j in order[:3])
    return text, {names[j]: {"mean_sd": float(shift[j]), "sd_ratio": float(ratio[j])} for j in order}


def drift_timeline(prep: Prepared, detector: str = "adwin", params: dict[str, Any] | None = None,
                   *, features: bool = True, burn_in: int = 252, recent: int = 63,
                   reference: int = 252) -> list[dict[str, Any]]:
    """Firings of one streaming detector on returns, volatility and (optionally) every feature."""
    params = dict(params or {})
    r = prep.returns.to_numpy(float)  # (N,)
    X = prep.X.to_numpy(float)  # (N, F)
    names = [str(c) for c in prep.X.columns]
    if len(r) <= burn_in + 1:
        raise ValueError(f"drift timeline needs more than burn_in={burn_in} rows, got {len(r)}")
    sd = float(np.nanstd(r[:burn_in])) or 1.0
    mabs = float(np.nanmean(np.abs(r[:burn_in]))) or 1.0
    mu_x, sd_x = np.nanmean(X[:burn_in], axis=0), np.nanstd(X[:burn_in], axis=0)
    sd_x = np.where(sd_x > 0, sd_x, 1.0)
    streams = {"returns": create_detector(detector, **params),
               "volatility": create_detector(detector, **params)}
    multi = MultiFeatureDetector(names, detector, params) if features else None
    events = []
    for t in range(burn_in, len(r)):
        lo, mid = max(0, t + 1 - recent - reference), max(0, t + 1 - recent)
        if np.isfinite(r[t]):
            for stream, value in (("returns", r[t] / sd), ("volatility", abs(r[t]) / mabs)):
                if streams[stream].update(value).drift_detected:
                    what, shift = _shift_text(stream, r[lo:mid], r[mid:t + 1], names)
                    events.append({"date": prep.X.index[t], "detector": detector, "stream": stream,
                                   "features": [], "what": what, "shift": shift})
        if multi is not None and np.isfinite(X[t]).all():
            if multi.update((X[t] - mu_x) / sd_x).drift_detected:
                cols = [names.index(f) for f in multi.drifted_features]
                what, shift = _shift_text("features", X[lo:mid][:, cols], X[mid:t + 1][:, cols],
                                          multi.drifted_features)
                events.append({"date": prep.X.index[t], "detector": detector, "stream": "features",
                               "features": list(multi.drifted_features), "what": what, "shift": shift})
    return events


# -- batch tests, year against previous year ---------------------------------------------------
def batch_drift_by_year(X: pd.DataFrame, *, tests: Sequence[str] = ("ks", "psi", "mmd"),
                        min_rows: int = 50, alpha: float = 0.05, n_permutations: int = 100,
                        max_samples: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """KS, PSI and MMD of every calendar year's features against the previous year's.

    ``moved``: features flagged by at least two of the tests run (by the only one, if one), in
    order of effect of the first test. MMD is the slow one (~0.3 s a year on a loaded machine);
    ``max_samples`` subsamples each year (seeded) for its kernel.
    """
    unknown = [t for t in tests if t not in ("ks", "psi", "mmd")]
    if unknown or not tests:
        raise ValueError(f"batch tests must be a non-empty subset of ks, psi, mmd; got {list(tests)}")
    run = {"ks": lambda a, b: ks_test(a, b, alpha=alpha), "psi": lambda a, b: psi(a, b),
           "mmd": lambda a, b: mmd_test(a, b, n_permutations=n_permutations, seed=seed, alpha=alpha,
                                        max_samples=max_samples)}
    years = np.asarray(pd.DatetimeIndex(X.index).year)
    full = [y for y in np.unique(years) if (years == y).sum() >= min_rows]
    out = []
    for prev, cur in zip(full[:-1], full[1:]):
        ref, now = X[years == prev].dropna(), X[years == cur].dropna()
        res = {t: run[t](ref, now) for t in tests}
        votes = {f: sum(f in r.drifted_features for r in res.values()) for f in X.columns}
        first = res[tests[0]].table.index  # sorted by effect, largest first
        moved = [str(f) for f in first if votes[f] >= min(2, len(tests))]
        row: dict[str, Any] = {"year": int(cur), "ref_year": int(prev), "n_ref": len(ref),
                               "n_cur": len(now), "moved": moved}
        for t, r in res.items():
            row[t] = {"statistic": r.statistic, "p_value": r.p_value, "drifted": r.drifted_features,
                      "per_feature": r.table["statistic"].to_dict()}
        out.append(row)
    return out


# -- feature stability across yearly environments ----------------------------------------------
def feature_stability(X: pd.DataFrame, y: pd.Series, *, min_rows: int = 50,
                      **selector_params: Any) -> dict[str, Any]:
    """RobustFeatureSelector on the labelled rows with one environment per calendar year."""
    ok = (y.notna() & X.notna().all(axis=1)).to_numpy()
    years = np.asarray(pd.DatetimeIndex(X.index).year)[ok]
    params = {"importance": False, "min_env_size": min_rows, "min_sign_agreement": 0.75,
              **selector_params}
    sel = RobustFeatureSelector(task="regression", **params).fit(X[ok], y[ok], years)
    rep = sel.report_
    envs = [int(e) for e in sel.environments_]
    rows = []
    for f, row in rep.iterrows():
        rows.append({"feature": str(f), "ic": [row[f"ic[{e}]"] for e in sel.environments_],
                     "sign_agreement": row["sign_agreement"], "ic_mean": row["ic_mean"],
                     "ic_std": row["ic_std"], "invariance_p": row["invariance_p"],
                     "score": row["score"], "kept": bool(row["kept"]), "reason": row["reason"]})
    return {"environments": envs, "target": "ret", "selector": sel.get_params(), "features": rows,
            "kept": [str(f) for f in sel.selected_features_]}


# -- everything, as one JSON-able dict ---------------------------------------------------------
def analyze_drift(source: Any = None, config: RunConfig | None = None, *, detector: str = "adwin",
                  detector_params: dict[str, Any] | None = None, features: bool = True,
                  prepared: Prepared | None = None, comparison: Any = None,
                  selector_params: dict[str, Any] | None = None,
                  batch_tests: Sequence[str] = ("ks", "psi", "mmd"), seed: int = 0) -> dict[str, Any]:
    """Timeline, batch tests, stability (and the retraining comparison if given) for one series."""
    config = config or RunConfig(data=str(source), models=())
    prep = prepared if prepared is not None else prepare(source, config)
    close = prep.ohlcv["close"].reindex(prep.X.index)
    years = sorted(set(pd.DatetimeIndex(prep.X.index).year))
    out: dict[str, Any] = {
        "version": SCHEMA_VERSION, "data": str(config.data), "horizon": config.horizon,
        "detector": detector, "detector_params": dict(detector_params or {}),
        "features": [str(c) for c in prep.X.columns],
        "test_years": [int(y) for y in years[-config.test_years:]] if len(years) > config.test_years else [],
        "price": {"dates": [str(d.date()) for d in close.index],
                  "close": [float(f"{v:.6g}") for v in close.to_numpy(float)]},
        "timeline": drift_timeline(prep, detector, detector_params, features=features),
        "batch": batch_drift_by_year(prep.X, tests=tuple(batch_tests), seed=seed),
        "stability": feature_stability(prep.X, prep.y["ret"], **(selector_params or {})),
        "notes": list(prep.notes),
    }
    if comparison is not None:
        table = comparison.table.reset_index()
        out["setups"] = {"baseline": comparison.baseline, "table": table.to_dict(orient="records"),
                         "fits": comparison.fits}
    return jsonable(out)


def write_drift_json(analysis: dict[str, Any], run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "drift.json"
    path.write_text(json.dumps(jsonable(analysis), allow_nan=False))
    return path


def moved_features(analysis: dict[str, Any]) -> pd.DataFrame:
    """How often each feature moved: year-on-year batch verdicts and streaming firings, per feature."""
    feats = analysis["features"]
    batch = pd.Series({f: sum(f in b["moved"] for b in analysis["batch"]) for f in feats})
    stream = pd.Series({f: sum(f in e["features"] for e in analysis["timeline"]) for f in feats})
    frame = pd.DataFrame({"years_moved": batch, "stream_firings": stream})
    frame["years_tested"] = len(analysis["batch"])
    stab = {r["feature"]: r for r in analysis["stability"]["features"]}
    frame["sign_agreement"] = [stab[f]["sign_agreement"] for f in feats]
    frame["ic_mean"] = [stab[f]["ic_mean"] for f in feats]
    frame["kept"] = [stab[f]["kept"] for f in feats]
    return frame.sort_values(["years_moved", "stream_firings"], ascending=False, kind="stable")
