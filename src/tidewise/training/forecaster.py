"""NeuralForecaster: any registered backbone + multi-task heads, trained by the one Trainer.

Shape legend: N rows, F features, T context, B batch, Q quantiles, D width.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, fields
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from tidewise.models.base import DEFAULT_QUANTILES, PRED_COLUMNS, FoldData, Forecaster
from tidewise.models.heads import ForecastNet, LossWeights, multitask_loss
from tidewise.training.trainer import History, Trainer, TrainConfig, resolve_device
from tidewise.training.windows import FeatureScaler, TargetScaler, WindowDataset, gather_windows, training_rows

_BACKBONE_PATHS: dict[str, tuple[str, str, str]] = {
    "mlp": ("tidewise.models.mlp", "MLPConfig", "MLP"),
    "cnn": ("tidewise.models.cnn", "CNNConfig", "CNN"),
    "lstm": ("tidewise.models.rnn", "LSTMConfig", "LSTM"),
    "gru": ("tidewise.models.rnn", "GRUConfig", "GRU"),
    "dlinear": ("tidewise.models.dlinear", "DLinearConfig", "DLinear"),
    "transformer": ("tidewise.models.transformer", "TransformerConfig", "Transformer"),
    "patchtst": ("tidewise.models.patchtst", "PatchTSTConfig", "PatchTST"),
    "lean": ("tidewise.models.lean", "LeanConfig", "Lean"),
}


class _LazyBackbones(Mapping):
    """arch -> (ConfigClass, ModuleClass), importing a model file only when it is asked for."""

    def __getitem__(self, arch: str) -> tuple[type, type[nn.Module]]:
        try:
            module, config_name, class_name = _BACKBONE_PATHS[arch]
        except KeyError:
            raise KeyError(f"unknown backbone {arch!r}; known: {', '.join(_BACKBONE_PATHS)}") from None
        mod = importlib.import_module(module)
        return getattr(mod, config_name), getattr(mod, class_name)

    def __iter__(self) -> Iterator[str]:
        return iter(_BACKBONE_PATHS)

    def __len__(self) -> int:
        return len(_BACKBONE_PATHS)


BACKBONES: Mapping[str, tuple[type, type[nn.Module]]] = _LazyBackbones()


def build_config(arch: str, n_features: int, context: int, size: str | None = None, **overrides: Any) -> Any:
    """The backbone's frozen config; `size` goes through `Config.from_size` or a `size` field."""
    config_cls, _ = BACKBONES[arch]
    kwargs = {"n_features": int(n_features), "context": int(context), **overrides}
    if size is None:
        return config_cls(**kwargs)
    if hasattr(config_cls, "from_size"):
        return config_cls.from_size(size, **kwargs)
    if "size" in {f.name for f in fields(config_cls)}:
        return config_cls(size=size, **kwargs)
    raise ValueError(f"backbone {arch!r} has no size presets")


def build_backbone(arch: str, n_features: int, context: int, size: str | None = None,
                   **overrides: Any) -> nn.Module:
    _, module_cls = BACKBONES[arch]
    return module_cls(build_config(arch, n_features, context, size, **overrides))


class NeuralForecaster(Forecaster):
    """Windows of the last `context` rows -> backbone -> direction, quantile and variance heads.

    Quantiles are always DEFAULT_QUANTILES, because PRED_COLUMNS name them. `ret` is the median.
    With vrex_weight > 0, environments come from data.meta["env"] (N,) or else the calendar year.
    """

    name = "neural"
    family = "neural"
    outputs = PRED_COLUMNS

    def __init__(self, arch: str = "lstm", size: str | None = None, context: int = 64, seed: int = 0,
                 epochs: int = 6, batch_size: int = 256, lr: float = 1e-2, weight_decay: float = 1e-2,
                 patience: int = 3, max_steps: int | None = None, device: str = "auto",
                 precision: str = "auto", loss_weights: dict[str, Any] | None = None,
                 vrex_weight: float = 0.0, progress: bool = False, **arch_overrides: Any) -> None:
        super().__init__(arch=arch, size=size, context=context, seed=seed, epochs=epochs,
                         batch_size=batch_size, lr=lr, weight_decay=weight_decay, patience=patience,
                         max_steps=max_steps, device=device, precision=precision,
                         loss_weights=loss_weights, vrex_weight=vrex_weight, progress=progress,
                         **arch_overrides)
        if arch not in _BACKBONE_PATHS:
            raise KeyError(f"unknown backbone {arch!r}; known: {', '.join(_BACKBONE_PATHS)}")
        self.arch, self.size, self.context = arch, size, int(context)
        self.arch_overrides = dict(arch_overrides)
        build_config(arch, 1, self.context, size, **arch_overrides)  # a bad override fails here, not in fit
        self.quantiles = DEFAULT_QUANTILES
        self.train_config = TrainConfig(
            lr=lr, weight_decay=weight_decay, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
            patience=patience, seed=seed, device=device, precision=precision,
            loss_weights=LossWeights(**(loss_weights or {})), vrex_weight=vrex_weight, progress=progress)
        self.net: ForecastNet | None = None
        self.n_features: int | None = None
        self.scaler: FeatureScaler | None = None
        self.targets: TargetScaler | None = None
        self.history: History | None = None

    # -- building -----------------------------------------------------------------------------
    def _build(self, n_features: int) -> ForecastNet:
        torch.manual_seed(self.seed)  # the same seed gives the same initial weights
        self.n_features = int(n_features)
        backbone = build_backbone(self.arch, n_features, self.context, self.size, **self.arch_overrides)
        self.net = ForecastNet(backbone, self.quantiles)
        return self.net

    def _environments(self, data: FoldData) -> np.ndarray | None:
        if self.train_config.vrex_weight <= 0:
            return None
        if "env" in data.meta:
            return np.asarray(data.meta["env"])
        if isinstance(data.X.index, pd.DatetimeIndex):
            return np.asarray(data.X.index.year)
        raise ValueError("vrex_weight > 0 needs data.meta['env'] or a DatetimeIndex")

    # -- learning -----------------------------------------------------------------------------
    def fit(self, data: FoldData) -> "NeuralForecaster":
        X = data.X.to_numpy(dtype=np.float64)
        self.scaler = FeatureScaler.fit(X[data.train])           # training rows only
        self.targets = TargetScaler.fit(data.y.iloc[data.train])
        Xs, Y = self.scaler.transform(X), self.targets.transform(data.y)  # (N, F), (N, 4)
        train_rows = training_rows(data.train, Y, self.context)
        val_rows = training_rows(data.val, Y, self.context)
        if train_rows.size == 0:
            raise ValueError(f"no training row has a full window of {self.context} rows and finite targets")
        env = self._environments(data)
        net = self._build(X.shape[1])
        loss_fn = partial(multitask_loss, weights=self.train_config.loss_weights, quantiles=self.quantiles)
        val = WindowDataset(Xs, val_rows, Y, self.context) if val_rows.size else None
        self.history = Trainer(self.train_config).fit(
            net, WindowDataset(Xs, train_rows, Y, self.context, env), val, loss_fn)
        return self

    @torch.no_grad()
    def predict(self, data: FoldData, rows: np.ndarray) -> pd.DataFrame:
        if self.net is None or self.scaler is None or self.targets is None:
            raise RuntimeError("predict before fit/load")
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return pd.DataFrame(index=data.X.index[rows], columns=list(PRED_COLUMNS), dtype="float64")
        device = resolve_device(self.train_config.device)
        net = self.net.to(device).eval()
        X = torch.as_tensor(self.scaler.transform(data.X.to_numpy(dtype=np.float64)), device=device)
        parts: list[dict[str, np.ndarray]] = []
        for chunk in torch.as_tensor(rows, device=device).split(1024):
            out = net(gather_windows(X, chunk, self.context))     # windows (B, T, F)
            parts.append({k: v.float().cpu().numpy().astype(np.float64) for k, v in out.items()})
        cat = {k: np.concatenate([p[k] for p in parts]) for k in ("logit", "quantiles", "log_var")}
        quant = self.targets.unscale_return(cat["quantiles"].reshape(len(rows), -1))  # (N, Q)
        frame = pd.DataFrame(index=data.X.index[rows])
        frame["p_up"] = 1.0 / (1.0 + np.exp(-cat["logit"].reshape(-1)))
        frame["ret"] = quant[:, self.quantiles.index(0.5)]
        for j, q in enumerate(self.quantiles):
            frame[f"q{int(round(q * 100))}"] = quant[:, j]
        frame["var"] = self.targets.unscale_var(np.exp(cat["log_var"].reshape(-1)))
        return frame[list(PRED_COLUMNS)]

    # -- state --------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if self.net is None or self.scaler is None or self.targets is None:
            raise RuntimeError("get_state before fit")
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        arrays["scaler.mean"], arrays["scaler.std"] = self.scaler.mean, self.scaler.std
        meta: dict[str, Any] = {"n_features": self.n_features, "targets": asdict(self.targets)}
        if self.history is not None:
            meta["history"] = asdict(self.history)
        return meta, arrays

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        net = self._build(int(meta["n_features"]))
        net.load_state_dict({k[4:]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                             if k.startswith("net.")})
        self.scaler = FeatureScaler(mean=np.asarray(arrays["scaler.mean"]), std=np.asarray(arrays["scaler.std"]))
        self.targets = TargetScaler(**meta["targets"])
        self.history = History(**meta["history"]) if "history" in meta else None

    # -- compute accounting -------------------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        if self.net is None:
            raise RuntimeError("no network: fit or load first")
        return self.net

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """A (B, T, F) input on the network's device, for FLOP counting and latency timing."""
        device = next(self.module.parameters()).device
        gen = torch.Generator().manual_seed(0)
        return torch.randn(batch, self.context, int(self.n_features), generator=gen).to(device)

    def n_params(self) -> int:
        return int(sum(p.numel() for p in self.module.parameters()))

    def flops_per_sample(self) -> float:
        from tidewise.evaluation.compute import forward_flops

        return float(forward_flops(self.module, self.example_input(1)))
