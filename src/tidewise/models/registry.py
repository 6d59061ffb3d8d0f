"""The one registry: every forecaster the CLI, the API and the benchmarks can name.

Values are zero-argument-importable factories `(**kwargs) -> Forecaster`. Neural entries import
torch-heavy modules only when called, so `import tidewise` stays light.
"""
from __future__ import annotations

from typing import Any, Callable

from tidewise.models.base import Forecaster


def _lazy(module: str, attr: str, **fixed: Any) -> Callable[..., Forecaster]:
    def make(**kwargs: Any) -> Forecaster:
        import importlib

        cls = getattr(importlib.import_module(module), attr)
        return cls(**{**fixed, **kwargs})

    make.__qualname__ = f"{attr}({', '.join(f'{k}={v!r}' for k, v in fixed.items())})"
    return make


NEURAL = ("mlp", "cnn", "lstm", "gru", "dlinear", "transformer", "patchtst", "lean")

MODELS: dict[str, Callable[..., Forecaster]] = {
    # naive baselines
    "always_up": _lazy("tidewise.models.naive", "AlwaysUp"),
    "majority": _lazy("tidewise.models.naive", "MajorityClass"),
    "zero_return": _lazy("tidewise.models.naive", "ZeroReturn"),
    "hist_mean": _lazy("tidewise.models.naive", "HistoricalMean"),
    "momentum": _lazy("tidewise.models.naive", "Momentum"),
    # classical / trees / volatility
    "linear": _lazy("tidewise.models.linear", "LinearModel"),
    "lgbm": _lazy("tidewise.models.gbm", "LightGBMModel"),
    "garch": _lazy("tidewise.models.volatility", "GarchT"),
    "ewma": _lazy("tidewise.models.volatility", "EWMAVol"),
    # neural zoo and the flagship: one forecaster class, one trainer, the backbone named by `arch`
    **{arch: _lazy("tidewise.training.forecaster", "NeuralForecaster", arch=arch) for arch in NEURAL},
    # lean's patch length chosen on pre-test validation years only (benchmarks/tune_lean.py, results/tune_lean.json)
    "lean": _lazy("tidewise.training.forecaster", "NeuralForecaster", arch="lean", patch_len=8),
}

NAIVE = ("always_up", "majority", "zero_return", "hist_mean", "momentum")


def create(name: str, **kwargs: Any) -> Forecaster:
    try:
        factory = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
    model = factory(**kwargs)
    model.name = name  # instance attribute: the registry name is what the leaderboard shows
    return model
