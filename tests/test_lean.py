"""The `lean` backbone: contract, sizes, causality, reference/fast agreement, normalisation."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F_

from tidewise.models.lean import SIZES, Lean, LeanConfig, causal_depthwise_conv, count_params

F, T = 5, 24


def _model(seed: int = 0, **kw) -> Lean:
    torch.manual_seed(seed)
    return Lean(LeanConfig(**{"n_features": F, "context": T, **kw})).eval()


def _x(bsz: int = 3, t_len: int = T, seed: int = 1) -> torch.Tensor:
    return torch.randn(bsz, t_len, F, generator=torch.Generator().manual_seed(seed))


def test_forward_shape_and_out_dim():
    m = _model(d_model=16, n_layers=2)
    out = m(_x())
    assert out.shape == (3, m.out_dim) and m.out_dim == 16
    assert torch.isfinite(out).all()


def test_presets_span_50k_to_50m_parameters():
    counts = {}
    for size in ("tiny", "small", "base"):
        counts[size] = count_params(Lean(LeanConfig(15, 64, size=size)))
    with torch.device("meta"):  # the 50M model without allocating it
        counts["large"] = count_params(Lean(LeanConfig(15, 64, size="large")))
    assert 35_000 <= counts["tiny"] <= 75_000
    assert 35_000_000 <= counts["large"] <= 75_000_000
    assert counts["tiny"] < counts["small"] < counts["base"] < counts["large"]


def test_explicit_width_and_depth_override_the_preset():
    cfg = LeanConfig(F, T, size="base", d_model=8, n_layers=1)
    m = Lean(cfg)
    assert (cfg.width, cfg.depth) == (8, 1) and len(m.blocks) == 1 and m.out_dim == 8
    assert LeanConfig(F, T, size="small").width == SIZES["small"][0]


@pytest.mark.parametrize("bad", [dict(size="huge"), dict(scan="fft"), dict(norm="batch"), dict(patch_len=0),
                                 dict(dropout=1.0), dict(d_model=0), dict(chunk=1)])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        LeanConfig(F, T, **bad)


def test_config_is_frozen():
    cfg = LeanConfig(F, T)
    with pytest.raises(Exception):
        cfg.patch_len = 2  # type: ignore[misc]
    assert cfg.with_(patch_len=2).patch_len == 2


@pytest.mark.parametrize("patch_len", [1, 4, 5])  # 5 does not divide 24: the oldest patch is padded
def test_token_states_are_causal(patch_len):
    m = _model(d_model=12, n_layers=2, patch_len=patch_len, norm="none")
    x = _x(2)
    t_cut = 13  # perturb every step after t_cut
    y = x.clone()
    y[:, t_cut + 1:] += 5.0 * torch.randn_like(y[:, t_cut + 1:])
    sx, sy = m.token_states(x), m.token_states(y)
    pad = (-T) % patch_len
    ends = [(k + 1) * patch_len - 1 - pad for k in range(sx.shape[1])]  # last time step of each token
    past = [k for k, e in enumerate(ends) if e <= t_cut]
    future = [k for k, e in enumerate(ends) if e > t_cut]
    assert past and future
    torch.testing.assert_close(sy[:, past], sx[:, past], rtol=0, atol=1e-6)
    assert (sy[:, future] - sx[:, future]).abs().max() > 1e-3  # the perturbation does reach later tokens


def test_forward_reads_only_the_window_and_ignores_nothing_in_it():
    m = _model(d_model=12)
    x = _x(2)
    y = x.clone()
    y[:, 0] += 1.0  # the oldest step still matters (recurrence plus window statistics)
    assert (m(y) - m(x)).abs().max() > 1e-4


def test_reference_and_chunked_models_agree_including_gradients():
    fast = _model(seed=3, d_model=16, n_layers=2, patch_len=1, chunk=4)
    ref = Lean(fast.cfg.with_(scan="reference")).eval()
    ref.load_state_dict(fast.state_dict())
    x = _x(2, seed=4)
    out_f, out_r = fast(x), ref(x)
    torch.testing.assert_close(out_f, out_r, rtol=1e-5, atol=1e-5)
    out_f.pow(2).sum().backward()
    out_r.pow(2).sum().backward()
    for (name, pf), pr in zip(fast.named_parameters(), ref.parameters()):
        torch.testing.assert_close(pf.grad, pr.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_every_parameter_gets_a_gradient():
    m = _model(d_model=8).train()
    m(_x()).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing


def test_window_normalisation_removes_level_and_scale_but_keeps_them_as_statistics():
    m = _model(d_model=12)
    x = _x(2)
    shifted = 3.0 * x + 7.0  # same shape of path, different level and scale per window
    z_x, stats_x = m.normalise(x)
    z_s, stats_s = m.normalise(shifted)
    torch.testing.assert_close(m.token_states(z_s), m.token_states(z_x), rtol=1e-4, atol=1e-4)
    assert stats_x.shape == (2, 2 * F)
    assert (m(shifted) - m(x)).abs().max() > 1e-3  # the statistics still carry scale to the heads
    m_none = _model(d_model=12, norm="none")
    assert m_none.normalise(x)[1] is None and m_none.stats is None


def test_seeded_construction_is_deterministic_and_dropout_only_in_training():
    a, b = _model(seed=5, dropout=0.3), _model(seed=5, dropout=0.3)
    x = _x()
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
    a.train()
    torch.manual_seed(0)
    first = a(x)
    assert (first - a(x)).abs().max() > 0  # dropout active in train mode
    a.eval()
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_other_context_lengths_work_at_run_time():
    m = _model(d_model=8, patch_len=4)
    for t_len in (4, 7, 64):
        assert m(_x(2, t_len)).shape == (2, 8)


@pytest.mark.parametrize("k", [1, 3, 4])
def test_causal_depthwise_conv_matches_torch_conv1d(k):
    g = torch.Generator().manual_seed(k)
    v, w = torch.randn(2, 9, 6, generator=g), torch.randn(k, 6, generator=g)
    # torch's grouped conv is cross-correlation over a left-padded sequence: weight (E, 1, K)
    ref = F_.conv1d(F_.pad(v.transpose(1, 2), (k - 1, 0)), w.t().unsqueeze(1), groups=6).transpose(1, 2)
    torch.testing.assert_close(causal_depthwise_conv(v, w), ref, rtol=1e-5, atol=1e-5)


def test_norm_both_feeds_standardised_and_given_window():
    m = _model(d_model=8, norm="both")
    x = _x(2)
    z, stats = m.normalise(x)
    assert z.shape == (2, T, 2 * F) and stats.shape == (2, 2 * F)
    torch.testing.assert_close(z[..., F:], x)
    torch.testing.assert_close(z[..., :F].mean(dim=1), torch.zeros(2, F), rtol=0, atol=1e-5)
    assert m(x).shape == (2, 8)
    # unlike norm="window", a level shift now reaches the per-token states
    assert (m.token_states(m.normalise(x + 3.0)[0]) - m.token_states(z)).abs().max() > 1e-3


def test_forward_flops_grow_linearly_with_context():
    from torch.utils.flop_counter import FlopCounterMode

    def flops(t_len: int) -> int:
        m = Lean(LeanConfig(F, t_len, d_model=16, n_layers=2, patch_len=4))
        with FlopCounterMode(display=False) as counter:
            m(_x(1, t_len))
        return counter.get_total_flops()

    f128, f256, f512 = flops(128), flops(256), flops(512)
    assert f128 > 0
    # every counted op is per token (no token-token interaction), so doubling T doubles the FLOPs
    assert f256 / f128 == pytest.approx(2.0, rel=0.01) and f512 / f256 == pytest.approx(2.0, rel=0.01)
