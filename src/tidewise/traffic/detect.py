"""Drift detection on flows: per flow (contrastive autoencoder, conformal credibility) and per window.

Shape legend: N flows, F features, D latent width, C classes, W flows per window.

Per flow
- `ContrastiveAEDetector` (the CADE idea, Yang et al. 2021): an autoencoder whose latent space is
  shaped by a contrastive loss (same-class pairs pulled together, other-class pairs pushed beyond a
  margin). Drift score = distance to the nearest class centroid, in units of that class's median
  absolute deviation of training distances; a flow is flagged above `threshold`. Explanation: the
  features whose values sit furthest (robust z-score) from the nearest class's training flows.
- `ConformalCredibility` (the Transcend idea, Jordaney et al. 2017): nonconformity = 1 - p(class);
  credibility = the conformal p-value of the predicted class against a calibration set of that class
  (Mondrian per class); flagged when below `alpha`.
Per window: `window_tests` runs tidewise.drift's batch tests on consecutive windows against the
training reference and names the features that moved; `stream_detect` feeds a per-flow score
into tidewise.drift's streaming detectors.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

_MAD_TO_SIGMA = 1.4826


class FlowScaler:
    """Signed log1p then robust standardisation (median, IQR); fitted on the training slice only."""

    def fit(self, X: pd.DataFrame) -> "FlowScaler":
        Z = np.sign(X.to_numpy(np.float64)) * np.log1p(np.abs(X.to_numpy(np.float64)))
        self.features_ = [str(c) for c in X.columns]
        self.center_ = np.median(Z, axis=0)
        iqr = np.subtract(*np.percentile(Z, [75, 25], axis=0))
        self.scale_ = np.where(iqr > 1e-6, iqr, np.maximum(Z.std(axis=0), 1.0))
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:  # (N, F)
        Z = X[self.features_].to_numpy(np.float64)
        Z = np.sign(Z) * np.log1p(np.abs(Z))
        return np.clip((Z - self.center_) / self.scale_, -50, 50).astype(np.float32)


@dataclass(frozen=True)
class CAEConfig:
    n_features: int
    latent: int = 16
    hidden: int = 64
    margin: float = 5.0
    contrast_weight: float = 0.1
    epochs: int = 30
    batch_size: int = 256
    lr: float = 3e-3
    seed: int = 0


def _build_cae(cfg: CAEConfig):
    import torch.nn as nn

    class ContrastiveAE(nn.Module):
        """MLP autoencoder; forward returns (z, reconstruction, input) for the loss."""

        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(cfg.n_features, cfg.hidden), nn.GELU(),
                                     nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.latent))
            self.dec = nn.Sequential(nn.Linear(cfg.latent, cfg.hidden), nn.GELU(),
                                     nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.n_features))

        def forward(self, x):  # (B, F) -> (B, D), (B, F), (B, F)
            z = self.enc(x)
            return z, self.dec(z), x

    return ContrastiveAE()


def contrastive_loss(out, y, margin: float, weight: float):
    """Per-sample loss (B,): reconstruction MSE + weight * mean over the batch of the pair terms
    (same class: d^2; other class: max(0, margin - d)^2)."""
    import torch

    z, recon, x = out
    recon_err = ((recon - x) ** 2).mean(dim=1)                   # (B,)
    d = torch.cdist(z, z)                                         # (B, B)
    same = (y[:, None] == y[None, :]).float()
    pair = same * d**2 + (1 - same) * torch.clamp(margin - d, min=0) ** 2
    return recon_err + weight * pair.mean(dim=1)


class ContrastiveAEDetector:
    def __init__(self, threshold: float = 3.5, epochs: int = 30, latent: int = 16, seed: int = 0) -> None:
        self.threshold, self.epochs, self.latent, self.seed = threshold, epochs, latent, seed

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> "ContrastiveAEDetector":
        from tidewise.training.trainer import TrainConfig, Trainer

        self.scaler_ = FlowScaler().fit(X)
        self.classes_ = sorted(np.unique(np.asarray(y)).tolist())
        codes = pd.Categorical(np.asarray(y), categories=self.classes_).codes.astype(np.int64)
        Z = self.scaler_.transform(X)
        self.config_ = CAEConfig(n_features=Z.shape[1], latent=self.latent, epochs=self.epochs, seed=self.seed)
        import torch

        torch.manual_seed(self.seed)  # the initial weights too, not only the trainer's shuffling
        self.net_ = _build_cae(self.config_)
        c = self.config_
        tc = TrainConfig(lr=c.lr, epochs=c.epochs, batch_size=c.batch_size, patience=c.epochs, seed=c.seed,
                         device="cpu", precision="fp32", weight_decay=1e-4)
        Trainer(tc).fit(self.net_, (Z, codes), None,
                        loss_fn=lambda out, yy: contrastive_loss(out, yy, c.margin, c.contrast_weight))
        lat = self._latent(Z)
        cent, med, mad = [], [], []
        for k in range(len(self.classes_)):
            zk = lat[codes == k]
            ck = np.median(zk, axis=0)  # median centroid: robust to the odd mislabelled/retransmit flow
            dk = np.linalg.norm(zk - ck, axis=1)
            cent.append(ck)
            med.append(np.median(dk))
            mad.append(max(_MAD_TO_SIGMA * np.median(np.abs(dk - np.median(dk))), 1e-6))
        self.centroids_, self.median_, self.mad_ = np.stack(cent), np.array(med), np.array(mad)
        # per-class feature medians / MADs in scaled space, for per-flow explanations
        self.feat_med_ = np.stack([np.median(Z[codes == k], axis=0) for k in range(len(self.classes_))])
        self.feat_mad_ = np.stack([np.maximum(_MAD_TO_SIGMA * np.median(np.abs(Z[codes == k] - self.feat_med_[k]),
                                                                          axis=0), 0.25)
                                   for k in range(len(self.classes_))])
        return self

    def _latent(self, Z: np.ndarray) -> np.ndarray:  # (N, F) -> (N, D)
        import torch

        self.net_.eval()
        with torch.no_grad():
            return self.net_.enc(torch.from_numpy(Z)).numpy()

    def score(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(score (N,), nearest class index (N,)); score = min_c (d_c - median_c) / MAD_c."""
        lat = self._latent(self.scaler_.transform(X))
        d = np.linalg.norm(lat[:, None, :] - self.centroids_[None], axis=2)    # (N, C)
        s = (d - self.median_[None]) / self.mad_[None]
        nearest = s.argmin(axis=1)
        return s[np.arange(len(s)), nearest], nearest

    def flag(self, X: pd.DataFrame) -> np.ndarray:
        return self.score(X)[0] > self.threshold

    def explain(self, X: pd.DataFrame, top: int = 3) -> list[list[tuple[str, float]]]:
        """Per flow: the `top` features furthest from the nearest class's training flows (robust z)."""
        Z = self.scaler_.transform(X)
        _, nearest = self.score(X)
        zs = np.abs(Z - self.feat_med_[nearest]) / self.feat_mad_[nearest]     # (N, F)
        order = np.argsort(-zs, axis=1)[:, :top]
        names = self.scaler_.features_
        return [[(names[j], float(zs[i, j])) for j in row] for i, row in enumerate(order)]

    def save(self, directory: str | Path) -> None:
        from safetensors.numpy import save_file as save_np
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.net_.state_dict().items()}, str(d / "cae.safetensors"))
        save_np({"centroids": self.centroids_, "median": self.median_, "mad": self.mad_,
                 "feat_med": self.feat_med_, "feat_mad": self.feat_mad_, "center": self.scaler_.center_,
                 "scale": self.scaler_.scale_}, str(d / "cae_stats.safetensors"))
        (d / "cae.json").write_text(json.dumps({"config": asdict(self.config_), "classes": self.classes_,
                                                "threshold": self.threshold, "features": self.scaler_.features_}))

    @classmethod
    def load(cls, directory: str | Path) -> "ContrastiveAEDetector":
        from safetensors.numpy import load_file as load_np
        from safetensors.torch import load_file

        d = Path(directory)
        meta = json.loads((d / "cae.json").read_text())
        obj = cls(threshold=meta["threshold"])
        obj.config_, obj.classes_ = CAEConfig(**meta["config"]), meta["classes"]
        obj.net_ = _build_cae(obj.config_)
        obj.net_.load_state_dict(load_file(str(d / "cae.safetensors")))
        st = load_np(str(d / "cae_stats.safetensors"))
        obj.centroids_, obj.median_, obj.mad_ = st["centroids"], st["median"], st["mad"]
        obj.feat_med_, obj.feat_mad_ = st["feat_med"], st["feat_mad"]
        obj.scaler_ = FlowScaler()
        obj.scaler_.features_, obj.scaler_.center_, obj.scaler_.scale_ = meta["features"], st["center"], st["scale"]
        return obj


class ConformalCredibility:
    """Mondrian conformal p-value of the predicted class; low credibility = the flow fits no class."""

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = alpha

    def fit(self, proba_cal: np.ndarray, y_cal: np.ndarray) -> "ConformalCredibility":
        """proba_cal (N, C) from a model NOT trained on these rows; y_cal (N,) class indices."""
        y_cal = np.asarray(y_cal, dtype=int)
        a = 1.0 - proba_cal[np.arange(len(y_cal)), y_cal]
        self.cal_ = [np.sort(a[y_cal == k]) for k in range(proba_cal.shape[1])]
        return self

    def credibility(self, proba: np.ndarray) -> np.ndarray:  # (N, C) -> (N,)
        pred = proba.argmax(axis=1)
        a = 1.0 - proba[np.arange(len(pred)), pred]
        out = np.empty(len(pred))
        for k in np.unique(pred):
            cal, m = self.cal_[k], pred == k
            # p = (#{cal >= a} + 1) / (n + 1)
            out[m] = (len(cal) - np.searchsorted(cal, a[m], side="left") + 1) / (len(cal) + 1)
        return out

    def flag(self, proba: np.ndarray) -> np.ndarray:
        return self.credibility(proba) < self.alpha


# ---------------------------------------------------------------- windows
def window_tests(ref: pd.DataFrame, stream: pd.DataFrame, window: int, test: str = "ks",
                 alpha: float = 0.01, **kwargs) -> pd.DataFrame:
    """One row per consecutive window of `stream` (time-ordered): drifted?, statistic, top moved features."""
    from tidewise.drift import run_batch_test

    rows = []
    for start in range(0, len(stream) - window + 1, window):
        cur = stream.iloc[start:start + window]
        # PSI flags by a threshold, not a significance level, so it takes no alpha
        res = run_batch_test(test, ref, cur, **({} if test == "psi" else {"alpha": alpha}), **kwargs)
        rows.append({"start": start, "end": start + window, "drifted": bool(res.drifted),
                     "statistic": res.statistic, "p_value": res.p_value,
                     "features": ", ".join(res.drifted_features[:5]) if test != "mmd"
                     else ", ".join(map(str, res.table.index[:5]))})
    return pd.DataFrame(rows)


def stream_detect(values: np.ndarray, detector: str = "page_hinkley", **params) -> list[int]:
    """Positions where a tidewise.drift streaming detector fires on a per-flow score stream."""
    from tidewise.drift import create_detector

    det = create_detector(detector, **params)
    for v in np.asarray(values, dtype=float):
        det.update(float(v))
    return list(det.detections)


def detection_prf(flagged: np.ndarray, positive: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 of per-flow flags against the truth (drifted or unseen class)."""
    flagged, positive = np.asarray(flagged, bool), np.asarray(positive, bool)
    tp = int((flagged & positive).sum())
    fp = int((flagged & ~positive).sum())
    fn = int((~flagged & positive).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn,
            "flag_rate": float(flagged.mean()) if len(flagged) else 0.0}
