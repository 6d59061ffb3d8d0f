"""DLinear backbone: moving-average trend/seasonal split, then linear maps over time.

Shape legend: B batch, T context, F features, K time-summary width, D output width.
As in DLinear, each series is split into a moving-average trend and the remainder; one linear map
over time (shared by all channels) summarises each part into K numbers, then a linear map mixes
channels into D. The moving average uses only rows inside the window, so it stays causal.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class DLinearConfig:
    n_features: int
    context: int
    d_model: int = 32
    kernel_size: int = 25
    time_width: int = 8
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if min(self.n_features, self.context, self.d_model, self.time_width) < 1 or self.kernel_size < 1:
            raise ValueError(f"invalid DLinearConfig {self}")


class DLinear(nn.Module):
    def __init__(self, config: DLinearConfig) -> None:
        super().__init__()
        self.config = config
        self.kernel = min(config.kernel_size, config.context) | 1  # odd, so the average is centred
        self.trend = nn.Linear(config.context, config.time_width)
        self.season = nn.Linear(config.context, config.time_width)
        self.mix = nn.Linear(2 * config.time_width * config.n_features, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.out_dim = config.d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, D)
        xt = x.transpose(1, 2)                            # (B, F, T)
        half = self.kernel // 2
        padded = F.pad(xt, (half, half), mode="replicate")  # repeat the window's own edge rows
        trend = F.avg_pool1d(padded, self.kernel, stride=1)  # (B, F, T)
        z = torch.cat([self.trend(trend), self.season(xt - trend)], dim=2)  # (B, F, 2K)
        return self.mix(self.drop(z.flatten(1)))          # (B, D)
