"""Temporal convolutional backbone (TCN): residual stacks of dilated causal 1-D convolutions.

Shape legend: B batch, T context, F features, D channels.
Dilations double per layer, so n_layers layers of kernel k see 1 + (k-1)(2^n_layers - 1) steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class CNNConfig:
    n_features: int
    context: int
    d_model: int = 32
    n_layers: int = 5  # receptive field 63 steps with kernel 3: the default context of 64
    kernel_size: int = 3
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if min(self.n_features, self.context, self.d_model, self.n_layers) < 1 or self.kernel_size < 2:
            raise ValueError(f"invalid CNNConfig {self}")


class _CausalBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.pad = (kernel_size - 1) * dilation  # left padding only: output t sees inputs <= t
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, D, T) -> (B, D, T)
        return h + self.drop(F.gelu(self.conv(F.pad(h, (self.pad, 0)))))


class CNN(nn.Module):
    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        self.inp = nn.Conv1d(config.n_features, config.d_model, 1)
        self.blocks = nn.Sequential(*[
            _CausalBlock(config.d_model, config.kernel_size, 2 ** i, config.dropout)
            for i in range(config.n_layers)
        ])
        self.out_dim = config.d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, D)
        h = self.blocks(self.inp(x.transpose(1, 2)))      # (B, D, T)
        return h[:, :, -1]                                # last (causal) step
