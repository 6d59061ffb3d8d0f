"""Recurrent backbones: LSTM and GRU (PyTorch's fused cells), last hidden state as output.

Shape legend: B batch, T context, F features, D hidden width.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class RNNConfig:
    n_features: int
    context: int
    d_model: int = 32
    n_layers: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if min(self.n_features, self.context, self.d_model, self.n_layers) < 1:
            raise ValueError(f"invalid {type(self).__name__} {self}")


@dataclass(frozen=True)
class LSTMConfig(RNNConfig):
    pass


@dataclass(frozen=True)
class GRUConfig(RNNConfig):
    pass


class _Recurrent(nn.Module):
    cell: type[nn.RNNBase]

    def __init__(self, config: RNNConfig) -> None:
        super().__init__()
        self.config = config
        self.inp = nn.Linear(config.n_features, config.d_model)
        self.rnn = self.cell(config.d_model, config.d_model, config.n_layers, batch_first=True,
                             dropout=config.dropout if config.n_layers > 1 else 0.0)
        self.out_dim = config.d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, D)
        out, _ = self.rnn(self.inp(x))                    # (B, T, D)
        return out[:, -1]


class LSTM(_Recurrent):
    cell = nn.LSTM


class GRU(_Recurrent):
    cell = nn.GRU
