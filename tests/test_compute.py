"""Compute accounting: FLOP counting, its growth with context, latency, peak memory, fit time."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from test_neural_models import tiny_fold

from tidewise.evaluation.compute import _LiveTensorBytes, forward_flops, measure_compute, time_fit
from tidewise.models.registry import create
from tidewise.training.forecaster import build_backbone

KEYS = {"params", "flops_per_sample", "latency_ms_b1", "latency_ms_b256", "peak_mem_mb", "peak_mem_method"}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_forward_flops_of_a_linear_layer_is_exact():
    assert forward_flops(nn.Linear(10, 20), torch.randn(1, 10)) == 2 * 10 * 20
    assert forward_flops(nn.Linear(10, 20), torch.randn(3, 10)) == 3 * 2 * 10 * 20


def _flops(arch: str, context: int) -> int:
    torch.manual_seed(0)
    return forward_flops(build_backbone(arch, 4, context), torch.randn(1, context, 4))


def test_attention_flops_grow_superlinearly_recurrences_linearly():
    growth = {arch: _flops(arch, 256) / _flops(arch, 64) for arch in ("transformer", "lstm", "gru", "cnn")}
    for arch in ("lstm", "gru", "cnn"):  # 4x the context -> 4x the work
        assert growth[arch] == pytest.approx(4.0, rel=0.02), arch
    assert growth["transformer"] > 5.0  # the T^2 attention term shows
    # the fused inference paths (oneDNN LSTM, fused encoder) would report 0: the counter must see them
    assert _flops("lstm", 64) > 0 and _flops("transformer", 64) > 0


def test_live_tensor_tracker_counts_the_peak_not_the_total():
    mb = 256 * 1024 * 4
    with _LiveTensorBytes() as tracker:
        a = torch.zeros(256, 1024)
        b = a + 1.0          # two live: 2 MiB
        del a, b
        c = torch.ones(256, 1024)  # one live again
        del c
    assert tracker.peak == 2 * mb
    assert tracker.current == 0


def test_measure_compute_neural_and_non_neural():
    fold = tiny_fold()
    neural = create("gru", context=8, epochs=1, d_model=8)
    seconds = time_fit(neural, fold)
    assert seconds > 0 and neural.net is not None
    got = measure_compute(neural, fold)
    assert KEYS <= set(got)
    assert got["params"] == sum(p.numel() for p in neural.net.parameters())
    assert got["flops_per_sample"] > 0 and got["latency_ms_b1"] > 0 and got["latency_ms_b256"] > 0
    assert got["peak_mem_method"] == "cpu_live_tensors"
    weights_mb = got["params"] * 4 / 2**20
    assert got["peak_mem_mb"] > weights_mb  # weights + input + activations

    naive = create("hist_mean")
    naive.fit(fold)
    got = measure_compute(naive, fold)
    assert KEYS <= set(got) and got["flops_per_sample"] is None
    assert got["peak_mem_method"] == "tracemalloc_predict" and got["peak_mem_mb"] > 0
    assert np.isfinite(got["latency_ms_b1"]) and got["latency_ms_b1"] > 0
