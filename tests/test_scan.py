"""The chunked scan (fast path) against the sequential reference: values, gradients, edge cases."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tidewise.models.scan import get_scan, scan_chunked, scan_cuda, scan_reference

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-11, atol=1e-12)}


def _inputs(bsz, t_len, d, dtype, seed=0, low=0.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    a = low + (high - low) * torch.rand(bsz, t_len, d, generator=g, dtype=dtype)
    b = torch.randn(bsz, t_len, d, generator=g, dtype=dtype)
    return a, b


def test_reference_matches_hand_computed_recurrence():
    a = torch.tensor([[[0.5], [0.25], [1.0]]])
    b = torch.tensor([[[2.0], [4.0], [-1.0]]])
    h = scan_reference(a, b)
    # h0 = 2; h1 = 0.25 * 2 + 4 = 4.5; h2 = 1.0 * 4.5 - 1 = 3.5
    assert torch.allclose(h.flatten(), torch.tensor([2.0, 4.5, 3.5]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("t_len,chunk", [(1, 4), (3, 4), (16, 16), (17, 16), (64, 4), (100, 7), (300, 16)])
def test_chunked_matches_reference(dtype, t_len, chunk):
    a, b = _inputs(2, t_len, 5, dtype, seed=t_len)
    torch.testing.assert_close(scan_chunked(a, b, chunk), scan_reference(a, b), **TOL[dtype])


@pytest.mark.parametrize("t_len,chunk", [(5, 4), (33, 4), (130, 16)])
def test_chunked_gradients_match_reference(t_len, chunk):
    a, b = _inputs(2, t_len, 3, torch.float64, seed=7)
    a.requires_grad_(), b.requires_grad_()
    weight = torch.randn(2, t_len, 3, dtype=torch.float64)
    grads_ref = torch.autograd.grad((scan_reference(a, b) * weight).sum(), (a, b))
    grads_fast = torch.autograd.grad((scan_chunked(a, b, chunk) * weight).sum(), (a, b))
    for ref, fast in zip(grads_ref, grads_fast):
        torch.testing.assert_close(fast, ref, **TOL[torch.float64])


def test_chunked_gradient_passes_gradcheck():
    a, b = _inputs(1, 11, 2, torch.float64, seed=3)
    assert torch.autograd.gradcheck(lambda a, b: scan_chunked(a, b, 3), (a.requires_grad_(), b.requires_grad_()))


def test_gradient_only_for_b():
    a, b = _inputs(1, 20, 2, torch.float64, seed=4)
    b.requires_grad_()
    (g_ref,) = torch.autograd.grad(scan_reference(a, b).sum(), b)
    (g_fast,) = torch.autograd.grad(scan_chunked(a, b, 4).sum(), b)
    torch.testing.assert_close(g_fast, g_ref)


@settings(max_examples=40, deadline=None)
@given(bsz=st.integers(1, 3), t_len=st.integers(1, 150), d=st.integers(1, 4), chunk=st.integers(2, 20),
       seed=st.integers(0, 10_000))
def test_chunked_matches_reference_random_shapes(bsz, t_len, d, chunk, seed):
    a, b = _inputs(bsz, t_len, d, torch.float64, seed=seed)
    torch.testing.assert_close(scan_chunked(a, b, chunk), scan_reference(a, b), **TOL[torch.float64])


@pytest.mark.parametrize("low,high", [(0.0, 1e-6), (0.999, 1.0), (1.0, 1.0), (0.0, 0.0)])
def test_extreme_decays_stay_exact(low, high):
    # Tiny decays make running products underflow; a cumulative-product-and-divide scan blows up here.
    a, b = _inputs(2, 200, 3, torch.float32, seed=1, low=low, high=high)
    fast = scan_chunked(a, b, 16)
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast, scan_reference(a, b), rtol=1e-4, atol=1e-4)


def test_decay_one_is_cumulative_sum_and_zero_is_identity():
    _, b = _inputs(1, 50, 2, torch.float64, seed=2)
    torch.testing.assert_close(scan_chunked(torch.ones_like(b), b, 8), b.cumsum(1))
    torch.testing.assert_close(scan_chunked(torch.zeros_like(b), b, 8), b)


def test_half_precision_accumulates_in_float32():
    a, b = _inputs(2, 256, 4, torch.float32, seed=5, low=0.95, high=1.0)
    out = scan_chunked(a.bfloat16(), b.bfloat16(), 16)
    assert out.dtype == torch.bfloat16
    ref = scan_reference(a.bfloat16().double(), b.bfloat16().double())
    # the error is one bf16 rounding of the result, not 256 accumulated roundings
    torch.testing.assert_close(out.double(), ref, rtol=1e-2, atol=1e-2)


def test_get_scan_names_and_cpu_fallback():
    a, b = _inputs(2, 40, 3, torch.float64, seed=9)
    ref = scan_reference(a, b)
    for name in ("reference", "chunked", "auto"):
        torch.testing.assert_close(get_scan(name, chunk=8, compile=False)(a, b), ref)
    torch.testing.assert_close(scan_cuda(a, b, 8), ref)  # CPU tensors: falls back to the chunked path
    with pytest.raises(ValueError):
        get_scan("nope")


def test_shape_validation():
    with pytest.raises(ValueError):
        scan_chunked(torch.rand(2, 3, 4), torch.rand(2, 3, 5))
    with pytest.raises(ValueError):
        scan_reference(torch.rand(3, 4), torch.rand(3, 4))
    with pytest.raises(ValueError):
        scan_chunked(torch.rand(1, 3, 4), torch.rand(1, 3, 4), chunk=1)


@pytest.mark.slow
def test_compiled_kernel_matches_reference():
    a, b = _inputs(2, 70, 3, torch.float32, seed=11)
    a.requires_grad_(), b.requires_grad_()
    fast = scan_chunked(a, b, 8, compile=True)
    torch.testing.assert_close(fast, scan_reference(a, b), **TOL[torch.float32])
    g_fast = torch.autograd.grad(fast.sum(), (a, b))
    g_ref = torch.autograd.grad(scan_reference(a, b).sum(), (a, b))
    for f, r in zip(g_fast, g_ref):
        torch.testing.assert_close(f, r, **TOL[torch.float32])
