"""Scan kernels for the first-order linear recurrence h_t = a_t * h_{t-1} + b_t, with h_{-1} = 0.

Shape legend: B batch, T time (tokens), D channels, C chunk length, N number of chunks.

Three paths compute the same thing:
- `scan_reference`: a Python loop over T. Pure PyTorch, obviously right, slow. The tests trust it.
- `scan_chunked`: the CPU/GPU fast path. T is cut into chunks of C steps; inside every chunk the
  recurrence runs sequentially over C steps but for all N chunks at once (a loop of C, not T);
  the chunk end-states are then combined by the same scan applied recursively to the N chunk
  summaries (their products of a and their local end states), and a final pass adds the carried-in
  state. Work is O(T * D) per level with levels T, T/C, T/C^2, ..., so linear in T; the Python loop
  runs about C * log_C(T) times instead of T times. It multiplies only, never divides, so it stays
  exact for any a in [0, 1] (the usual cumulative-product trick h = A * cumsum(b / A) overflows when
  the running product A underflows, i.e. when decays are small). The backward pass is a custom
  autograd function: it reuses the same kernel on the time-reversed gradient, so training stores
  only a and h (O(T * D)) instead of every intermediate of the loop.
- `scan_cuda`: on CUDA only, the `accelerated-scan` kernel library if installed (imported lazily
  when first used, never at import time), else `scan_chunked`.

`get_scan(name, compile=False)` returns one of these; `compile=True` (or env TIDEWISE_COMPILE=1)
wraps the chunked kernel in torch.compile. Both are opt-in and never required.
"""
from __future__ import annotations

import os
from typing import Callable

import torch

ScanFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DEFAULT_CHUNK = 16


def scan_reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a, b: (B, T, D) -> h: (B, T, D); one step per time index, differentiable by autograd."""
    _check(a, b)
    h = torch.zeros_like(b[:, 0])  # (B, D)
    out = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, dim=1)


def _scan_levels(a: torch.Tensor, b: torch.Tensor, chunk: int) -> torch.Tensor:
    """No-autograd chunked scan. a, b: (B, T, D) in the compute dtype -> h: (B, T, D)."""
    bsz, t_len, d = b.shape
    if t_len <= chunk:  # one chunk: a short sequential loop
        h = torch.empty_like(b)
        h[:, 0] = b[:, 0]
        for t in range(1, t_len):
            h[:, t] = a[:, t] * h[:, t - 1] + b[:, t]
        return h
    n = -(-t_len // chunk)
    pad = n * chunk - t_len
    if pad:  # pad at the end with a = 1, b = 0: later steps never change earlier states
        a = torch.cat([a, a.new_ones(bsz, pad, d)], dim=1)
        b = torch.cat([b, b.new_zeros(bsz, pad, d)], dim=1)
    a4 = a.reshape(bsz, n, chunk, d)  # (B, N, C, D)
    h4 = b.reshape(bsz, n, chunk, d).clone()  # local states, zero carried-in state
    p4 = a4.clone()  # running products of a inside each chunk
    for i in range(1, chunk):  # sequential over C, parallel over the N chunks
        h4[:, :, i] += a4[:, :, i] * h4[:, :, i - 1]
        p4[:, :, i] *= p4[:, :, i - 1]
    # State at each chunk's end: a scan over chunks with gates = chunk products, tokens = local ends.
    ends = _scan_levels(p4[:, :, -1], h4[:, :, -1], chunk)  # (B, N, D)
    carry = torch.cat([ends.new_zeros(bsz, 1, d), ends[:, :-1]], dim=1)  # state entering each chunk
    h4 += p4 * carry.unsqueeze(2)
    return h4.reshape(bsz, n * chunk, d)[:, :t_len]


_COMPILED: dict[str, Callable[..., torch.Tensor]] = {}


def _kernel(compile: bool) -> Callable[..., torch.Tensor]:
    if not compile:
        return _scan_levels
    if "levels" not in _COMPILED:  # compiled lazily, once per process
        _COMPILED["levels"] = torch.compile(_scan_levels, dynamic=True)
    return _COMPILED["levels"]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # Accumulate half-precision inputs in float32: a recurrence over thousands of steps in bf16 drifts.
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class _ChunkedScan(torch.autograd.Function):
    """Forward: h = scan(a, b). Backward: g = reverse scan of dL/dh with gates a_{t+1};
    dL/db = g, dL/da_t = g_t * h_{t-1}."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, chunk: int, compile: bool) -> torch.Tensor:
        kernel = _kernel(compile)
        cdt = _compute_dtype(b.dtype)
        h = kernel(a.to(cdt), b.to(cdt), chunk)
        ctx.save_for_backward(a, h)
        ctx.chunk, ctx.compile, ctx.out_dtype = chunk, compile, b.dtype
        return h.to(b.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: torch.Tensor):
        a, h = ctx.saved_tensors
        kernel = _kernel(ctx.compile)
        cdt = h.dtype
        a_next = torch.cat([a[:, 1:].to(cdt), a.new_zeros(a.shape[0], 1, a.shape[2], dtype=cdt)], dim=1)
        g = kernel(a_next.flip(1), grad_h.to(cdt).flip(1), ctx.chunk).flip(1)  # (B, T, D)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            h_prev = torch.cat([h.new_zeros(h.shape[0], 1, h.shape[2]), h[:, :-1]], dim=1)
            grad_a = (g * h_prev).to(a.dtype)
        if ctx.needs_input_grad[1]:
            grad_b = g.to(ctx.out_dtype)
        return grad_a, grad_b, None, None


def scan_chunked(a: torch.Tensor, b: torch.Tensor, chunk: int = DEFAULT_CHUNK,
                 compile: bool = False) -> torch.Tensor:
    """a, b: (B, T, D) -> h: (B, T, D), same values as `scan_reference`, linear work in T."""
    _check(a, b)
    if chunk < 2:
        raise ValueError(f"chunk must be >= 2, got {chunk}")
    return _ChunkedScan.apply(a, b, int(chunk), bool(compile))


def scan_cuda(a: torch.Tensor, b: torch.Tensor, chunk: int = DEFAULT_CHUNK,
              compile: bool = False) -> torch.Tensor:
    """CUDA fast path: `accelerated_scan.warp.scan` when installed and the tensors are on CUDA."""
    _check(a, b)
    warp = _accelerated_scan() if a.is_cuda else None
    if warp is None:
        return scan_chunked(a, b, chunk, compile)
    t_len = b.shape[1]
    t_pow = max(32, 1 << (t_len - 1).bit_length())  # the kernel wants a power-of-two length >= 32
    cdt = _compute_dtype(b.dtype)
    gates = torch.nn.functional.pad(a.to(cdt).transpose(1, 2), (0, t_pow - t_len), value=1.0)
    tokens = torch.nn.functional.pad(b.to(cdt).transpose(1, 2), (0, t_pow - t_len))
    h = warp(gates.contiguous(), tokens.contiguous())  # (B, D, T') as the library wants
    return h[..., :t_len].transpose(1, 2).to(b.dtype)


def _accelerated_scan():
    try:  # optional dependency; see pyproject extra `cuda`
        from accelerated_scan.warp import scan as warp
    except Exception:  # not installed, or no CUDA toolchain
        return None
    return warp


def get_scan(name: str = "chunked", chunk: int = DEFAULT_CHUNK, compile: bool | None = None) -> ScanFn:
    """Name -> scan function (a, b) -> h. `compile=None` reads env TIDEWISE_COMPILE."""
    if compile is None:
        compile = os.environ.get("TIDEWISE_COMPILE", "0") not in ("", "0", "false", "False")
    if name == "reference":
        return scan_reference
    if name == "chunked":
        return lambda a, b: scan_chunked(a, b, chunk, compile)
    if name == "auto":
        return lambda a, b: scan_cuda(a, b, chunk, compile)
    raise ValueError(f"unknown scan {name!r}; use reference | chunked | auto")


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or b.dim() != 3:
        raise ValueError(f"a and b must both be (B, T, D); got {tuple(a.shape)} and {tuple(b.shape)}")
