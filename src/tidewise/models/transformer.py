"""Vanilla Transformer encoder backbone: full self-attention over the whole window, O(T^2).

Shape legend: B batch, T context, F features, D width, P number of patches.
Attention is not masked: every position in the window is already <= t, so nothing leaks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class TransformerConfig:
    n_features: int
    context: int
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    ff_mult: int = 2
    # nn.TransformerEncoderLayer applies one dropout to attention weights too, which forces PyTorch's
    # unfused math attention on CPU (about 2.5x slower here); early stopping regularises instead
    dropout: float = 0.0
    positions: str = "learned"  # learned | sinusoidal
    pool: str = "last"          # last | mean | flatten (all tokens -> one linear map, as PatchTST's head)

    def __post_init__(self) -> None:
        if min(self.n_features, self.context, self.d_model, self.n_layers, self.n_heads, self.ff_mult) < 1:
            raise ValueError(f"invalid {type(self).__name__} {self}")
        if self.d_model % self.n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        if self.positions not in ("learned", "sinusoidal") or self.pool not in ("last", "mean", "flatten"):
            raise ValueError("positions must be learned|sinusoidal and pool last|mean|flatten")


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Fixed sine/cosine position table (length, dim), as in 'Attention Is All You Need'."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return table


def encoder(config: TransformerConfig) -> nn.TransformerEncoder:
    """PyTorch's own encoder stack (pre-norm); shared with the patch Transformer."""
    layer = nn.TransformerEncoderLayer(config.d_model, config.n_heads, config.ff_mult * config.d_model,
                                       config.dropout, activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, config.n_layers, norm=nn.LayerNorm(config.d_model),
                                 enable_nested_tensor=False)


class PositionalTokens(nn.Module):
    """Adds learned or sinusoidal positions to (B, L, D) tokens; L <= length."""

    def __init__(self, length: int, dim: int, kind: str) -> None:
        super().__init__()
        if kind == "learned":
            self.table = nn.Parameter(0.02 * torch.randn(length, dim))
        else:
            self.register_buffer("table", sinusoidal_positions(length, dim), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens + self.table[-tokens.shape[1]:]  # right-aligned: the last token is "now"


class TokenPool(nn.Module):
    """(B, L, D) tokens -> (B, D): the last token, the mean, or a linear map of all of them."""

    def __init__(self, kind: str, n_tokens: int, dim: int) -> None:
        super().__init__()
        self.kind = kind
        self.proj = nn.Linear(n_tokens * dim, dim) if kind == "flatten" else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.proj is not None:
            return self.proj(h.flatten(1))
        return h[:, -1] if self.kind == "last" else h.mean(dim=1)


class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.inp = nn.Linear(config.n_features, config.d_model)
        self.pos = PositionalTokens(config.context, config.d_model, config.positions)
        self.encoder = encoder(config)
        self.pool = TokenPool(config.pool, config.context, config.d_model)
        self.out_dim = config.d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, D)
        return self.pool(self.encoder(self.pos(self.inp(x))))  # (B, T, D) -> (B, D)
