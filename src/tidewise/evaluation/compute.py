"""Compute accounting for any forecaster: parameters, forward FLOPs, latency, peak memory, fit time.

Shape legend: B batch, T context, F features.

What each figure measures (comparisons are ratios within one run on one machine):
  params           trainable parameters (neural) or stored numbers in the fitted state (others)
  flops_per_sample forward FLOPs of one window, counted by torch.utils.flop_counter.FlopCounterMode on
                   the reference math path (SDPA math kernel, oneDNN off) so fused kernels are counted
  latency_ms_b1 / latency_ms_b256
                   wall time per sample of one call at batch 1 and batch 256 (median of repeats):
                   the module forward for neural models, `predict` on 1 / 256 rows for the others
  peak_mem_mb      see `peak_mem_method` in the result:
                   cuda_max_allocated   torch.cuda.max_memory_allocated over a batch-256 forward
                                        (weights + input + activations)
                   cpu_live_tensors     weights + input + the peak of live tensors created during a
                                        batch-256 forward, tracked at the dispatcher (PyTorch's CPU
                                        allocator keeps no peak statistic)
                   tracemalloc_predict  Python/numpy allocations during `predict` on 256 rows; memory
                                        allocated inside C/C++ libraries (LightGBM, arch) is not seen
"""
from __future__ import annotations

import statistics
import time
import tracemalloc
import warnings
import weakref
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from tidewise.models.base import FoldData, Forecaster

LATENCY_BATCHES = (1, 256)


def forward_flops(module: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass of `module` on `x` (divide by the batch size for per-sample)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    was_training = module.training
    module.eval()
    try:
        # autograd stays on: nn.TransformerEncoder's fused inference path is invisible to the counter
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with sdpa_kernel(SDPBackend.MATH), torch.backends.mkldnn.flags(enabled=False), \
                    FlopCounterMode(display=False) as counter:
                module(x)
    finally:
        module.train(was_training)
    return int(counter.get_total_flops())


class _LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of storages created by ops inside the mode while any tensor on them is alive.
    Hand-written because PyTorch's CPU allocator exposes no peak-memory counter."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage address -> [bytes, live tensor count]
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                self._track(t)
        return out

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key == 0:
            return
        entry = self.live.get(key)
        if entry is None:
            entry = self.live[key] = [storage.nbytes(), 0]
            self.current += entry[0]
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        weakref.finalize(t, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            self.current -= entry[0]
            del self.live[key]


def _median_seconds(fn: Callable[[], Any], sync: Callable[[], None], budget_s: float = 0.25,
                    min_reps: int = 3, max_reps: int = 50) -> float:
    fn()  # warm-up (lazy init, allocator, caches)
    sync()
    times: list[float] = []
    while len(times) < min_reps or (sum(times) < budget_s and len(times) < max_reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _is_neural(model: Forecaster) -> bool:
    return getattr(model, "family", "") == "neural" and hasattr(model, "module")


def _neural_compute(model: Any) -> dict[str, Any]:
    module: nn.Module = model.module.eval()
    device = next(module.parameters()).device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out: dict[str, Any] = {}
    with torch.no_grad():
        for b in LATENCY_BATCHES:
            x = model.example_input(b)                                   # (B, T, F)
            out[f"latency_ms_b{b}"] = 1e3 * _median_seconds(lambda: module(x), sync) / b
        x = model.example_input(LATENCY_BATCHES[-1])
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            module(x)
            sync()
            out["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
            out["peak_mem_method"] = "cuda_max_allocated"
        else:
            static = sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])
            tracker = _LiveTensorBytes()
            with tracker:
                module(x)
            out["peak_mem_mb"] = (static + x.numel() * x.element_size() + tracker.peak) / 2**20
            out["peak_mem_method"] = "cpu_live_tensors"
    out["device"] = str(device)
    return out


def _predict_compute(model: Forecaster, data: FoldData, rows: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for b in LATENCY_BATCHES:
        batch = np.resize(rows, b)  # repeat rows when the block is shorter than the batch
        out[f"latency_ms_b{b}"] = 1e3 * _median_seconds(lambda: model.predict(data, batch), lambda: None) / b
    tracemalloc.start()
    try:
        model.predict(data, np.resize(rows, LATENCY_BATCHES[-1]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out["peak_mem_mb"] = peak / 2**20
    out["peak_mem_method"] = "tracemalloc_predict"
    out["device"] = "cpu"
    return out


def measure_compute(model: Forecaster, data: FoldData, rows: np.ndarray | None = None) -> dict[str, Any]:
    """params, flops_per_sample, latency_ms_b1, latency_ms_b256, peak_mem_mb (+ method, device)
    for a fitted model; `rows` (default: the fold's test rows) feed non-neural `predict` timing."""
    rows = np.asarray(data.test if rows is None else rows, dtype=np.int64)
    if rows.size == 0:
        rows = np.arange(len(data.X))[-1:]
    flops = model.flops_per_sample()
    result: dict[str, Any] = {"params": int(model.n_params()),
                              "flops_per_sample": None if flops is None else float(flops)}
    result.update(_neural_compute(model) if _is_neural(model) else _predict_compute(model, data, rows))
    return result


def time_fit(model: Forecaster, data: FoldData) -> float:
    """Wall-clock seconds of `model.fit(data)` (the model is fitted in place)."""
    t0 = time.perf_counter()
    model.fit(data)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0
