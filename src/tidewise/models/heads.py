"""Multi-task heads shared by every neural backbone, and their losses.

Shape legend: B batch, D backbone width, Q quantiles.

A backbone maps a window (B, T, F) to a vector (B, D); these heads turn that vector into
  logit     (B,)    direction: P(return > 0) = sigmoid(logit)
  quantiles (B, Q)  return quantiles, monotone by construction
  log_var   (B,)    log of the next-period realised variance
All targets are in *scaled* units (see tidewise.training.windows.TargetScaler); the adapter unscales.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from tidewise.models.base import DEFAULT_QUANTILES

# log-variance is soft-limited to this range (scaled units) so exp() can never overflow in bf16/fp32
LOG_VAR_LIMIT = 12.0


@dataclass(frozen=True)
class LossWeights:
    """Weights of the three task losses; `volatility_kind` is "qlike" (realised variance target)
    or "gaussian" (zero-mean Gaussian NLL of the realised return)."""

    direction: float = 1.0
    quantile: float = 1.0
    volatility: float = 1.0
    volatility_kind: str = "qlike"

    def __post_init__(self) -> None:
        if min(self.direction, self.quantile, self.volatility) < 0:
            raise ValueError("loss weights must be >= 0")
        if self.volatility_kind not in ("qlike", "gaussian"):
            raise ValueError(f"volatility_kind must be 'qlike' or 'gaussian', got {self.volatility_kind!r}")


class MultiTaskHeads(nn.Module):
    def __init__(self, in_dim: int, quantiles: tuple[float, ...] = DEFAULT_QUANTILES) -> None:
        super().__init__()
        qs = tuple(float(q) for q in quantiles)
        if list(qs) != sorted(qs) or not all(0.0 < q < 1.0 for q in qs):
            raise ValueError(f"quantiles must be increasing in (0, 1), got {qs}")
        self.quantiles = qs
        self.norm = nn.LayerNorm(in_dim)
        self.proj = nn.Linear(in_dim, 2 + len(qs))  # logit | base quantile, Q-1 increments | log_var

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.proj(self.norm(h))                                  # (B, 2 + Q)
        base, inc = z[:, 1:2], z[:, 2:1 + len(self.quantiles)]        # (B, 1), (B, Q-1)
        # monotone quantiles: first quantile plus a cumulative sum of positive increments
        quant = torch.cat([base, base + torch.cumsum(F.softplus(inc), dim=1)], dim=1)  # (B, Q)
        log_var = LOG_VAR_LIMIT * torch.tanh(z[:, -1] / LOG_VAR_LIMIT)               # (B,)
        return {"logit": z[:, 0], "quantiles": quant, "log_var": log_var}


class ForecastNet(nn.Module):
    """Backbone followed by the multi-task heads: window (B, T, F) -> dict of head outputs."""

    def __init__(self, backbone: nn.Module, quantiles: tuple[float, ...] = DEFAULT_QUANTILES) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = MultiTaskHeads(int(backbone.out_dim), quantiles)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.backbone(x))


# -- losses (each returns per-sample values (B,), so the trainer can group by environment) ------
def direction_loss(logit: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logit, up, reduction="none")


def pinball_loss(pred_q: torch.Tensor, y: torch.Tensor, quantiles: tuple[float, ...]) -> torch.Tensor:
    """Mean pinball loss over the Q quantiles: pred_q (B, Q), y (B,) -> (B,)."""
    tau = torch.as_tensor(quantiles, dtype=pred_q.dtype, device=pred_q.device)  # (Q,)
    diff = y[:, None] - pred_q                                                  # (B, Q)
    return torch.maximum(tau * diff, (tau - 1.0) * diff).mean(dim=1)


def qlike_loss(log_var: torch.Tensor, realised: torch.Tensor) -> torch.Tensor:
    """QLIKE = log v + y / v with v = exp(log_var); minimised in expectation at v = E[y]."""
    return log_var + realised * torch.exp(-log_var)


def multitask_loss(out: dict[str, torch.Tensor], target: torch.Tensor, weights: LossWeights,
                   quantiles: tuple[float, ...]) -> torch.Tensor:
    """Weighted per-sample loss. target (B, 4): scaled return, direction (0/1), scaled variance,
    and the squared return in variance units (for the Gaussian volatility loss)."""
    out = {k: v.float() for k, v in out.items()}  # losses in fp32 even under bf16 autocast
    loss = weights.direction * direction_loss(out["logit"], target[:, 1])
    loss = loss + weights.quantile * pinball_loss(out["quantiles"], target[:, 0], quantiles)
    if weights.volatility_kind == "qlike":
        vol = qlike_loss(out["log_var"], target[:, 2])
    else:  # zero-mean Gaussian NLL of the return, constant dropped: 0.5 * (log v + r^2 / v)
        vol = 0.5 * qlike_loss(out["log_var"], target[:, 3])
    return loss + weights.volatility * vol
