"""Traffic classifiers: LightGBM on flow statistics, and a small GRU on the early-packet sequence.

Shape legend: N flows, F statistical features, T early packets (SPLT length), C classes, D width.
Both expose fit / predict_proba / predict / save / load; artifacts are LightGBM's text model,
safetensors weights and JSON configs (no pickle).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tidewise.traffic.flows import SPLT_N, check_no_identity_features, sequence_array


class StatsClassifier:
    """Multiclass LightGBM on the flow-statistics columns it was fitted with."""

    def __init__(self, n_estimators: int = 100, learning_rate: float = 0.1, num_leaves: int = 31,
                 seed: int = 0) -> None:
        self.params = dict(n_estimators=n_estimators, learning_rate=learning_rate,
                           num_leaves=num_leaves, seed=seed)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> "StatsClassifier":
        import lightgbm as lgb

        check_no_identity_features(list(X.columns))
        self.features_ = [str(c) for c in X.columns]
        self.classes_ = sorted(np.unique(np.asarray(y)).tolist())
        codes = pd.Categorical(np.asarray(y), categories=self.classes_).codes
        p = self.params
        self.booster_ = lgb.train(
            dict(objective="multiclass", num_class=len(self.classes_), learning_rate=p["learning_rate"],
                 num_leaves=p["num_leaves"], min_data_in_leaf=10, feature_fraction=0.8,
                 bagging_fraction=0.8, bagging_freq=1, seed=p["seed"], num_threads=1,
                 deterministic=True, force_row_wise=True, verbose=-1),
            lgb.Dataset(X.to_numpy(np.float64), label=codes), num_boost_round=p["n_estimators"])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:  # (N, C)
        return np.asarray(self.booster_.predict(X[self.features_].to_numpy(np.float64)))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.classes_)[self.predict_proba(X).argmax(axis=1)]

    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(d / "lightgbm.txt"))
        (d / "lightgbm.json").write_text(json.dumps(
            {"params": self.params, "features": self.features_, "classes": self.classes_}, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> "StatsClassifier":
        import lightgbm as lgb

        d = Path(directory)
        meta = json.loads((d / "lightgbm.json").read_text())
        obj = cls(**meta["params"])
        obj.features_, obj.classes_ = meta["features"], meta["classes"]
        obj.booster_ = lgb.Booster(model_file=str(d / "lightgbm.txt"))
        return obj


# ---------------------------------------------------------------- sequence model
@dataclass(frozen=True)
class SequenceConfig:
    n_classes: int
    context: int = SPLT_N
    d_model: int = 32
    n_layers: int = 1
    epochs: int = 50
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0


def sequence_inputs(df: pd.DataFrame, n: int = SPLT_N) -> np.ndarray:
    """(N, T, 3): log size, direction, log inter-arrival; fixed scales, so nothing is fitted."""
    seq = sequence_array(df, n)
    return np.stack([np.log1p(seq[..., 0]) / 7.3, seq[..., 1],
                     np.log1p(np.maximum(seq[..., 2], 0.0)) / 7.0], axis=-1).astype(np.float32)


def _build_net(cfg: SequenceConfig):
    import torch.nn as nn

    from tidewise.models.rnn import GRU, GRUConfig

    class SequenceNet(nn.Module):
        """GRU backbone (tidewise.models.rnn) + linear head; (B, T, 3) -> (B, C) logits."""

        def __init__(self) -> None:
            super().__init__()
            self.backbone = GRU(GRUConfig(n_features=3, context=cfg.context, d_model=cfg.d_model,
                                          n_layers=cfg.n_layers, dropout=0.0))
            self.head = nn.Linear(self.backbone.out_dim, cfg.n_classes)

        def forward(self, x):  # (B, T, 3) -> (B, C)
            return self.head(self.backbone(x))

    return SequenceNet()


def _per_sample_ce(logits, y):
    import torch.nn.functional as F

    return F.cross_entropy(logits.float(), y.long(), reduction="none")


class SequenceClassifier:
    """Small GRU on the first T packets, trained by tidewise.training.trainer.Trainer."""

    def __init__(self, epochs: int = 50, d_model: int = 32, seed: int = 0) -> None:
        self.epochs, self.d_model, self.seed = epochs, d_model, seed

    def fit(self, df: pd.DataFrame, y: np.ndarray, val_df: pd.DataFrame | None = None,
            val_y: np.ndarray | None = None) -> "SequenceClassifier":
        from tidewise.training.trainer import TrainConfig, Trainer

        self.classes_ = sorted(np.unique(np.asarray(y)).tolist())
        self.config_ = SequenceConfig(n_classes=len(self.classes_), epochs=self.epochs,
                                      d_model=self.d_model, seed=self.seed)
        import torch

        torch.manual_seed(self.seed)  # the initial weights too, not only the trainer's shuffling
        self.net_ = _build_net(self.config_)
        codes = lambda v: pd.Categorical(np.asarray(v), categories=self.classes_).codes.astype(np.int64)  # noqa: E731
        train = (sequence_inputs(df), codes(y))
        val = None
        if val_df is not None and len(val_df):
            keep = np.isin(np.asarray(val_y), self.classes_)
            val = (sequence_inputs(val_df[keep]), codes(np.asarray(val_y)[keep]))
        tc = TrainConfig(lr=self.config_.lr, epochs=self.config_.epochs, batch_size=self.config_.batch_size,
                         patience=4, seed=self.seed, device="cpu", precision="fp32", weight_decay=1e-3)
        self.history_ = Trainer(tc).fit(self.net_, train, val, loss_fn=_per_sample_ce)
        return self

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:  # (N, C)
        import torch

        self.net_.eval()
        with torch.no_grad():
            logits = self.net_(torch.from_numpy(sequence_inputs(df)))
        return torch.softmax(logits, dim=-1).numpy()

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.classes_)[self.predict_proba(df).argmax(axis=1)]

    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.net_.state_dict().items()}, str(d / "sequence.safetensors"))
        (d / "sequence.json").write_text(json.dumps({"config": asdict(self.config_), "classes": self.classes_}))

    @classmethod
    def load(cls, directory: str | Path) -> "SequenceClassifier":
        from safetensors.torch import load_file

        d = Path(directory)
        meta = json.loads((d / "sequence.json").read_text())
        obj = cls(epochs=meta["config"]["epochs"], d_model=meta["config"]["d_model"], seed=meta["config"]["seed"])
        obj.classes_, obj.config_ = meta["classes"], SequenceConfig(**meta["config"])
        obj.net_ = _build_net(obj.config_)
        obj.net_.load_state_dict(load_file(str(d / "sequence.safetensors")))
        return obj
