"""Train once, detect later: the artifacts behind `tidewise traffic train` and `tidewise traffic detect`.

A bundle directory holds the LightGBM model (text), the GRU and contrastive-AE weights (safetensors),
the conformal calibration scores (safetensors), a reference sample of training flows (Parquet) for
window tests, and bundle.json (config, classes, features, robust features, thresholds).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tidewise.traffic.classify import SequenceClassifier, StatsClassifier
from tidewise.traffic.detect import ConformalCredibility, ContrastiveAEDetector, window_tests
from tidewise.traffic.evaluate import EvalConfig, _robust_features, temporal_split
from tidewise.traffic.flows import feature_columns


def train_bundle(df: pd.DataFrame, manifest: dict, out: str | Path, cfg: EvalConfig = EvalConfig(),
                 log=lambda s: None) -> Path:
    """Fit every model on period-0 training flows (calibrate on the next slice) and save them."""
    from safetensors.numpy import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    feats = feature_columns(df)
    split = temporal_split(df, cfg.train_frac, cfg.cal_frac, manifest["held_out"])
    tr, cal = (split == "train").to_numpy(), (split == "cal").to_numpy()
    X, y = df[feats], df["app"].to_numpy()
    robust, _ = _robust_features(X[tr], y[tr], df.loc[tr, "environment"].to_numpy(), cfg.seed)
    log(f"training on {tr.sum()} flows, calibrating on {cal.sum()}; robust features {len(robust)}/{len(feats)}")
    lgbm = StatsClassifier(cfg.n_estimators, seed=cfg.seed).fit(X[tr], y[tr])
    lgbm.save(out)
    SequenceClassifier(epochs=cfg.seq_epochs, seed=cfg.seed).fit(df[tr], y[tr], df[cal], y[cal]).save(out)
    cae = ContrastiveAEDetector(epochs=cfg.cae_epochs, seed=cfg.seed).fit(X[tr], y[tr])
    cae.threshold = float(np.quantile(cae.score(X[cal])[0], cfg.cae_quantile))
    cae.save(out)
    conf = ConformalCredibility(cfg.conformal_alpha).fit(
        lgbm.predict_proba(X[cal]), pd.Categorical(y[cal], categories=lgbm.classes_).codes)
    save_file({f"class{k}": a.astype(np.float64) for k, a in enumerate(conf.cal_)}, str(out / "conformal.safetensors"))
    ref = df.loc[tr, feats].sample(n=min(int(tr.sum()), 2000), random_state=cfg.seed)
    ref.to_parquet(out / "reference.parquet")
    (out / "bundle.json").write_text(json.dumps({
        "config": cfg.__dict__, "features": feats, "robust_features": robust, "classes": lgbm.classes_,
        "held_out": manifest["held_out"], "conformal_alpha": cfg.conformal_alpha}, indent=1))
    return out


def detect_with_bundle(bundle: str | Path, df: pd.DataFrame, window: int = 150, alpha: float = 0.01
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-flow frame: prediction, CAE score/flag, credibility/flag, top moved features;
    per-window frame: KS test on robust features against the training reference)."""
    from safetensors.numpy import load_file

    b = Path(bundle)
    meta = json.loads((b / "bundle.json").read_text())
    lgbm, cae, seq = StatsClassifier.load(b), ContrastiveAEDetector.load(b), SequenceClassifier.load(b)
    cal = load_file(str(b / "conformal.safetensors"))
    conf = ConformalCredibility(meta["conformal_alpha"])
    conf.cal_ = [np.sort(cal[f"class{k}"]) for k in range(len(meta["classes"]))]
    X = df[meta["features"]]
    proba = lgbm.predict_proba(X)
    score, _ = cae.score(X)
    cred = conf.credibility(proba)
    expl = cae.explain(X, top=3)
    flows = pd.DataFrame({
        "first_seen_ms": df["first_seen_ms"].to_numpy(), "predicted": np.asarray(lgbm.classes_)[proba.argmax(1)],
        "predicted_sequence": seq.predict(df), "confidence": proba.max(1), "cae_score": score,
        "cae_flag": score > cae.threshold, "credibility": cred, "conformal_flag": cred < conf.alpha,
        "moved_features": [", ".join(f for f, _ in e) for e in expl]})
    for col in ("app", "period", "environment"):
        if col in df:
            flows[col] = df[col].to_numpy()
    ref = pd.read_parquet(b / "reference.parquet")
    win = window_tests(ref[meta["robust_features"]], df[meta["robust_features"]].reset_index(drop=True),
                       min(window, len(df)), "ks", alpha=alpha)
    return flows, win
