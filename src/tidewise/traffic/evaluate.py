"""`tidewise traffic evaluate`: the traffic protocol of docs/EVALUATION.md on a flow table.

Temporal split: period 0 is cut by time into train (oldest), calibration, and test (newest); every
later period is test only, so every training flow is older than every test flow. The held-out
application never enters training or calibration. Every transform (scaler, robust-feature mask,
conformal calibration) is fitted on period-0 rows older than the test rows.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from tidewise.traffic.classify import SequenceClassifier, StatsClassifier
from tidewise.traffic.detect import (ConformalCredibility, ContrastiveAEDetector, detection_prf,
                                     stream_detect, window_tests)
from tidewise.traffic.flows import check_no_identity_features, feature_columns


@dataclass(frozen=True)
class EvalConfig:
    train_frac: float = 0.6      # of period 0, oldest flows
    cal_frac: float = 0.15       # next slice of period 0: conformal calibration + thresholds
    window: int = 150            # flows per detection window
    window_alpha: float = 0.01
    cae_quantile: float = 0.95   # CAE threshold = this quantile of calibration scores (~5% false flags)
    conformal_alpha: float = 0.05
    n_estimators: int = 100
    seq_epochs: int = 50
    cae_epochs: int = 25
    subsample: float = 1.0       # < 1: evaluate on a random fraction of flows (fast checks)
    seed: int = 0


def temporal_split(df: pd.DataFrame, train_frac: float, cal_frac: float, held_out: str) -> pd.Series:
    """'train' | 'cal' | 'test' | 'excluded' per row; df must be sorted by first_seen_ms."""
    if not df["first_seen_ms"].is_monotonic_increasing:
        raise ValueError("flow table must be sorted by first_seen_ms")
    split = pd.Series("test", index=df.index, dtype=object)
    p0 = np.flatnonzero((df["period"] == df["period"].min()).to_numpy())
    n_train, n_cal = int(len(p0) * train_frac), int(len(p0) * cal_frac)
    split.iloc[p0[:n_train]] = "train"
    split.iloc[p0[n_train:n_train + n_cal]] = "cal"
    split[(df["app"] == held_out) & split.isin(["train", "cal"])] = "excluded"
    return split


def eval_segments(df: pd.DataFrame, split: pd.Series) -> pd.Series:
    """Name of the evaluation step of each test row: 'p0-test', 'p1', 'p2', ..."""
    seg = pd.Series("", index=df.index, dtype=object)
    test = split == "test"
    p0 = df["period"] == df["period"].min()
    seg[test & p0] = "p0-test"
    seg[test & ~p0] = "p" + df.loc[test & ~p0, "period"].astype(str)
    return seg


def aut(values: list[float]) -> float:
    """Area under time (TESSERACT): trapezoid mean of a per-period metric, in [0, 1]."""
    v = np.asarray(values, float)
    return float(v[0]) if len(v) == 1 else float(((v[1:] + v[:-1]) / 2).mean())


def _robust_features(X: pd.DataFrame, y: np.ndarray, env: np.ndarray, seed: int):
    from tidewise.drift import RobustFeatureSelector

    # The selector's default gates (IC sign agrees in every environment, equal-slopes test at p=0.01);
    # importance=False only skips per-environment LightGBM fits that ic_stability does not use.
    X = X.loc[:, X.nunique() > 1]  # constant in training (e.g. URG/ECE counts): no information to judge
    sel = RobustFeatureSelector(task="classification", method="ic_stability", importance=False,
                                seed=seed).fit(X, y, env)
    feats = list(sel.selected_features_)
    if len(feats) < 5:  # never leave the classifier with nothing: fall back to the top 5 by score
        feats = list(sel.report_["score"].sort_values(ascending=False).index[:5])
    return feats, sel.report_


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0))}


def held_out_summary(flagged: np.ndarray, is_held_out: np.ndarray, confident: np.ndarray) -> dict:
    """Of the held-out app's flows: share flagged, and share confidently misclassified (not flagged,
    yet the classifier's top probability >= its confidence bar). Every held-out prediction is wrong."""
    f, h, c = (np.asarray(a, bool) for a in (flagged, is_held_out, confident))
    n = int(h.sum())
    return {"n": n, "flag_rate": float(f[h].mean()) if n else None,
            "confidently_misclassified": float((~f[h] & c[h]).mean()) if n else None}


def _window_summary(win: pd.DataFrame, onset: int, t_ms: np.ndarray) -> dict:
    before = win[win["end"] <= onset]
    after = win[win["end"] > onset]
    hit = after[after["drifted"]]
    out = {"windows_before": len(before), "false_alarms": int(before["drifted"].sum()),
           "windows_after": len(after), "detected_after": int(after["drifted"].sum())}
    if len(hit):
        end = int(hit["end"].iloc[0])
        out["delay_flows"] = end - onset
        out["delay_s"] = float((t_ms[min(end, len(t_ms)) - 1] - t_ms[onset]) / 1000)
    else:
        out["delay_flows"], out["delay_s"] = None, None
    return out


def run_evaluation(df: pd.DataFrame, manifest: dict, cfg: EvalConfig = EvalConfig(),
                   log=lambda s: None) -> dict:
    t_start = time.perf_counter()
    held_out = manifest["held_out"]
    if cfg.subsample < 1.0:
        df = df.sample(frac=cfg.subsample, random_state=cfg.seed)
    df = df.sort_values("first_seen_ms", kind="stable").reset_index(drop=True)
    feats = feature_columns(df)
    check_no_identity_features(feats)
    split = temporal_split(df, cfg.train_frac, cfg.cal_frac, held_out)
    seg = eval_segments(df, split)
    steps = ["p0-test"] + [f"p{k}" for k in sorted(df["period"].unique()) if k > df["period"].min()]
    tr, cal, te = (split == "train").to_numpy(), (split == "cal").to_numpy(), (split == "test").to_numpy()
    X, y = df[feats], df["app"].to_numpy()
    known = ~df["held_out"].to_numpy()
    log(f"{len(df)} flows: train {tr.sum()}, cal {cal.sum()}, test {te.sum()}; {len(feats)} features")

    robust, robust_report = _robust_features(X[tr], y[tr], df.loc[tr, "environment"].to_numpy(), cfg.seed)
    log(f"robust features (fitted on period-0 training environments only): {len(robust)}/{len(feats)}")

    models = {"lgbm-all": StatsClassifier(cfg.n_estimators, seed=cfg.seed).fit(X[tr], y[tr]),
              "lgbm-robust": StatsClassifier(cfg.n_estimators, seed=cfg.seed).fit(X.loc[tr, robust], y[tr])}
    seq = SequenceClassifier(epochs=cfg.seq_epochs, seed=cfg.seed).fit(df[tr], y[tr], df[cal], y[cal])
    log("classifiers fitted")
    preds = {"lgbm-all": models["lgbm-all"].predict(X), "lgbm-robust": models["lgbm-robust"].predict(X),
             "gru-sequence": seq.predict(df)}
    # Naive retraining: before each later period, refit on every labelled flow older than it.
    retrain = np.array(preds["lgbm-all"], dtype=object)
    retrain_r = np.array(preds["lgbm-robust"], dtype=object)
    for s in steps[1:]:
        k = int(s[1:])
        old = known & ~(split == "excluded").to_numpy() & (df["period"] < k).to_numpy()
        m_now = (seg == s).to_numpy()
        retrain[m_now] = StatsClassifier(cfg.n_estimators, seed=cfg.seed).fit(X[old], y[old]).predict(X[m_now])
        retrain_r[m_now] = StatsClassifier(cfg.n_estimators, seed=cfg.seed).fit(
            X.loc[old, robust], y[old]).predict(X.loc[m_now, robust])
    preds["lgbm-all+retrain"], preds["lgbm-robust+retrain"] = retrain, retrain_r

    curve = []
    for name, p in preds.items():
        for s in steps:
            m = (seg == s).to_numpy() & known
            up = m & df["drifted"].to_numpy()
            row = {"model": name, "step": s, "n": int(m.sum()), **_scores(y[m], p[m])}
            row["accuracy_upgraded_apps"] = float((p[up] == y[up]).mean()) if up.any() else None
            curve.append(row)
    curve_df = pd.DataFrame(curve)
    aut_rows = [{"model": name, "aut_accuracy": aut(g["accuracy"].tolist()), "aut_macro_f1": aut(g["macro_f1"].tolist())}
                for name, g in curve_df.groupby("model", sort=False)]

    # ---------------- per-flow drift detection
    cae = ContrastiveAEDetector(epochs=cfg.cae_epochs, seed=cfg.seed).fit(X[tr], y[tr])
    cal_scores, _ = cae.score(X[cal])
    cae.threshold = float(np.quantile(cal_scores, cfg.cae_quantile))
    proba = models["lgbm-all"].predict_proba(X)
    cls = models["lgbm-all"].classes_
    cal_idx = pd.Categorical(y[cal], categories=cls).codes
    conf = ConformalCredibility(cfg.conformal_alpha).fit(proba[cal], cal_idx)
    score, _ = cae.score(X)
    cred = conf.credibility(proba)
    flags = {"cae": score > cae.threshold, "conformal": cred < cfg.conformal_alpha}
    flags["cae|conformal"] = flags["cae"] | flags["conformal"]
    positive = (df["drifted"] | df["held_out"]).to_numpy()
    det_rows = []
    for name, f in flags.items():
        det_rows.append({"detector": name, "step": "all-test", **detection_prf(f[te], positive[te])})
        for s in steps:
            m = (seg == s).to_numpy()
            det_rows.append({"detector": name, "step": s, **detection_prf(f[m], positive[m])})
    ho = te & df["held_out"].to_numpy()
    confident = proba.max(axis=1) >= 0.9
    held_rows = [{"detector": name, "held_out_app": held_out, **held_out_summary(f[te], ho[te], confident[te])}
                 for name, f in flags.items()]

    # ---------------- per-window detection (time-ordered test stream of the known apps)
    # The held-out app runs in every period, so it would make every window differ from the training
    # reference; it is scored per flow above, and the windows measure the upgrades' drift alone.
    stream = te & known
    onset_pos = int(np.argmax((df.loc[stream, "period"] > df["period"].min()).to_numpy()))
    t_ms = df.loc[stream, "first_seen_ms"].to_numpy()
    rng = np.random.default_rng(cfg.seed)
    ref_idx = np.flatnonzero(tr)
    ref_idx = np.sort(rng.choice(ref_idx, size=min(len(ref_idx), 2000), replace=False))
    windows, win_rows = {}, []
    for fs_name, fs in (("all", feats), ("robust", robust)):
        w = window_tests(df.iloc[ref_idx][fs], df.loc[stream, fs].reset_index(drop=True), cfg.window,
                         "ks", alpha=cfg.window_alpha)
        windows[f"ks/{fs_name}"] = w
        win_rows.append({"detector": f"ks windows ({fs_name} features)", **_window_summary(w, onset_pos, t_ms)})
    for name in ("cae", "conformal"):
        pos = stream_detect(flags[name][stream].astype(float), "adwin", delta=0.002)
        w = pd.DataFrame({"start": pos, "end": [p + 1 for p in pos], "drifted": True})
        windows[f"adwin/{name}"] = w
        win_rows.append({"detector": f"ADWIN on {name} flag stream",
                         **_window_summary(w, onset_pos, t_ms), "windows_before": None, "windows_after": None})

    # ---------------- explanations: which features moved, per upgraded app and period
    explain_rows = []
    from tidewise.drift import ks_test
    for s in steps[1:]:
        for app in sorted(df.loc[(seg == s) & df["drifted"], "app"].unique()):
            ref = X[tr & (y == app)]
            cur = X[(seg == s).to_numpy() & (y == app)]
            if len(ref) < 10 or len(cur) < 10:
                continue
            res = ks_test(ref, cur, alpha=0.01)
            top = res.table.head(5)
            mflag = (seg == s).to_numpy() & (y == app)
            expl = cae.explain(X[mflag & flags["cae"]], top=1)
            top_cae = pd.Series([e[0][0] for e in expl]).value_counts().head(3).to_dict() if expl else {}
            explain_rows.append({"step": s, "app": app, "upgrade": manifest_change(manifest, app, int(s[1:])),
                                 "ks_top_features": [(f, round(float(d), 3)) for f, d in top["statistic"].items()],
                                 "n_drifted_features": int(res.table["drifted"].sum()),
                                 "cae_flag_rate": float(flags["cae"][mflag].mean()),
                                 "cae_top_feature_counts": top_cae})
    log(f"evaluation done in {time.perf_counter() - t_start:.0f}s")
    return {
        "config": asdict(cfg), "n_flows": len(df), "held_out": held_out, "features": feats,
        "robust_features": robust, "split_counts": split.value_counts().to_dict(),
        "robust_report": robust_report.reset_index().to_dict(orient="records"),
        "curve": curve, "aut": aut_rows, "detection": det_rows, "held_out_test": held_rows,
        "windows": win_rows, "explanations": explain_rows,
        "timeline": {k: v.to_dict(orient="list") for k, v in windows.items()},
        "onset": onset_pos, "cae_threshold": cae.threshold, "seconds": time.perf_counter() - t_start,
    }


def manifest_change(manifest: dict, app: str, period: int) -> str:
    """'tls 1.2->1.3, http 1.1->2' style description of how `app` differs from period 0."""
    base = next(p for p in manifest["periods"] if p["period"] == 0)["variants"][app]
    now = next(p for p in manifest["periods"] if p["period"] == period)["variants"][app]
    return ", ".join(f"{k} {base.get(k)}->{v}" for k, v in now.items() if base.get(k) != v)
