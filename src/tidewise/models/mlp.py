"""MLP backbone: the whole window flattened into one vector.

Shape legend: B batch, T context, F features, S per-step width, D width.
Each time step is first projected from F to S numbers by one shared linear map, so the flattened
input is T*S wide rather than T*F: far fewer weights to overfit with a few thousand training windows.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class MLPConfig:
    n_features: int
    context: int
    d_model: int = 32
    n_layers: int = 2
    step_width: int = 4
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if min(self.n_features, self.context, self.d_model, self.n_layers, self.step_width) < 1:
            raise ValueError(f"invalid MLPConfig {self}")


class MLP(nn.Module):
    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        self.config = config
        self.step = nn.Linear(config.n_features, config.step_width)
        layers: list[nn.Module] = []
        width = config.context * config.step_width
        for _ in range(config.n_layers):
            layers += [nn.Linear(width, config.d_model), nn.GELU(), nn.Dropout(config.dropout)]
            width = config.d_model
        self.net = nn.Sequential(*layers)
        self.out_dim = config.d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, D)
        return self.net(self.step(x).flatten(1))          # (B, T, S) -> (B, T*S) -> (B, D)
