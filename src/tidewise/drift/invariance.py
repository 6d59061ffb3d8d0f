"""Invariance penalties across environments, for the neural trainer (pure PyTorch).

Shape legend: N rows in the batch, E environments.

- ``vrex_penalty``  V-REx (Krueger et al., 2021): the variance of the per-environment risks.
                    Zero when every environment has the same loss.
- ``irm_penalty``   IRMv1 (Arjovsky et al., 2019): the squared gradient of each environment's
                    risk with respect to a dummy scale w on the predictions, at w = 1. Zero when
                    rescaling the predictor would not lower any environment's risk.

The trainer adds ``lambda * penalty`` to the mean risk. This module is imported lazily by
``tidewise.drift`` so that the rest of the drift toolkit never loads torch.
"""
from __future__ import annotations

from typing import Callable

import torch


def per_env_losses(losses: torch.Tensor, env_ids: torch.Tensor) -> torch.Tensor:
    """Mean per-sample loss of each environment present in the batch: (N,), (N,) -> (E,).

    Environments are ordered by id; absent ids are skipped, so E counts only those present.
    """
    _, inverse, counts = torch.unique(env_ids, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(counts), dtype=losses.dtype, device=losses.device)
    sums = sums.index_add(0, inverse, losses)
    return sums / counts.to(losses.dtype)


def vrex_penalty(per_env_losses: torch.Tensor) -> torch.Tensor:
    """Variance (population, i.e. divided by E) of the per-environment risks: (E,) -> scalar."""
    if per_env_losses.ndim != 1 or per_env_losses.numel() < 1:
        raise ValueError("vrex_penalty expects a 1-D tensor of per-environment losses")
    return ((per_env_losses - per_env_losses.mean()) ** 2).mean()


def irm_penalty(
    logits_or_preds: torch.Tensor,
    targets: torch.Tensor,
    env_ids: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    reduction: str = "mean",
) -> torch.Tensor:
    """IRMv1 penalty: sum or mean over environments of ||d R_e(w * f(x)) / d w at w = 1||^2.

    ``logits_or_preds`` (N, ...) are the model outputs (logits for a classification loss,
    predictions for a regression loss); ``targets`` matches what ``loss_fn`` expects;
    ``env_ids`` (N,) integer environment labels; ``loss_fn(outputs, targets) -> scalar`` is the
    mean risk (e.g. ``torch.nn.functional.mse_loss`` or ``cross_entropy``). The gradient is built
    with ``create_graph=True`` so the penalty itself back-propagates into the model.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError("reduction must be 'mean' or 'sum'")
    scale = torch.ones((), dtype=logits_or_preds.dtype, device=logits_or_preds.device,
                       requires_grad=True)
    terms = []
    for env in torch.unique(env_ids):
        m = env_ids == env
        risk = loss_fn(logits_or_preds[m] * scale, targets[m])
        (grad,) = torch.autograd.grad(risk, [scale], create_graph=True)
        terms.append(grad.pow(2))
    stacked = torch.stack(terms)
    return stacked.mean() if reduction == "mean" else stacked.sum()
