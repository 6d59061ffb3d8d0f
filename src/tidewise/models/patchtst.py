"""PatchTST-style backbone: the window is cut into patches along time, each patch (all channels
together, i.e. channel-mixing) becomes one token, and a Transformer encoder runs over the tokens.

Shape legend: B batch, T context, F features, L patch length, P number of patches, D width.
Attention over P = T / stride tokens costs O(P^2): cheaper than the vanilla Transformer, still quadratic.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from tidewise.models.transformer import PositionalTokens, TokenPool, TransformerConfig, encoder


@dataclass(frozen=True)
class PatchTSTConfig(TransformerConfig):
    patch_len: int = 8
    stride: int = 8
    pool: str = "flatten"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.patch_len < 1 or self.stride < 1:
            raise ValueError("patch_len and stride must be >= 1")

    @property
    def n_patches(self) -> int:
        # the window is left-padded (with its first row) to a whole number of strides
        return max(1, -(-(self.context - self.patch_len) // self.stride) + 1)


class PatchTST(nn.Module):
    def __init__(self, config: PatchTSTConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Linear(config.patch_len * config.n_features, config.d_model)
        self.pos = PositionalTokens(config.n_patches, config.d_model, config.positions)
        self.encoder = encoder(config)
        self.pool = TokenPool(config.pool, config.n_patches, config.d_model)
        self.out_dim = config.d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, D)
        c = self.config
        need = c.patch_len + (c.n_patches - 1) * c.stride
        if x.shape[1] < need:                             # pad on the old side, repeating the oldest row
            x = F.pad(x.transpose(1, 2), (need - x.shape[1], 0), mode="replicate").transpose(1, 2)
        x = x[:, x.shape[1] - need:]                      # keep the most recent rows
        patches = x.unfold(1, c.patch_len, c.stride)      # (B, P, F, L)
        h = self.encoder(self.pos(self.embed(patches.flatten(2))))  # (B, P, D)
        return self.pool(h)                               # (B, D)
