"""The one trainer: schedule, early stopping, seeding, devices, V-REx, checkpoints and resume, DDP gate."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import tidewise.training.trainer as trainer_mod
from tidewise.training.trainer import (
    ArrayBatches,
    Trainer,
    TrainConfig,
    config_from_checkpoint,
    dist_env,
    load_checkpoint,
    per_sample_mse,
    reduce_loss,
    resolve_device,
    shard,
    warmup_cosine,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and the shared machine has two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def regression_data(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (x @ rng.standard_normal(6) + 0.1 * rng.standard_normal(n)).astype(np.float32)[:, None]
    return x, y


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Dropout(0.2), nn.Linear(16, 1))


def weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def test_device_resolution(monkeypatch):
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("auto") == torch.device("cuda", 3)


def test_warmup_then_cosine():
    lrs = [warmup_cosine(s, 100, 0.1, 0.05) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(0.05, abs=1e-3)


def test_training_reduces_loss_and_restores_best_weights():
    x, y = regression_data()
    model = small_net()
    cfg = TrainConfig(epochs=20, batch_size=32, lr=1e-2, patience=20)
    hist = Trainer(cfg).fit(model, (x[:192], y[:192]), (x[192:], y[192:]))
    val_losses = [e["val_loss"] for e in hist.epochs]
    assert val_losses[-1] < 0.25 * val_losses[0]
    assert hist.best_val_loss == pytest.approx(min(val_losses))
    assert hist.epochs[hist.best_epoch]["val_loss"] == hist.best_val_loss
    # the returned model carries the best epoch's weights
    trainer = Trainer(cfg)
    assert trainer.evaluate(model, ArrayBatches(x[192:], y[192:]),
                            per_sample_mse) == pytest.approx(hist.best_val_loss, rel=1e-5)


def test_early_stopping_stops_after_patience():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((64, 6)).astype(np.float32), rng.standard_normal((64, 1)).astype(np.float32)
    # pure noise and a high learning rate: validation loss stops improving quickly
    hist = Trainer(TrainConfig(epochs=50, batch_size=8, lr=5e-2, patience=2)).fit(
        small_net(), (x[:32], y[:32]), (x[32:], y[32:]))
    assert hist.stopped_early and len(hist.epochs) == hist.best_epoch + 3 and len(hist.epochs) < 50


def test_a_nan_validation_loss_never_counts_as_best():
    x, y = regression_data(64)
    nan_val = lambda out, t: per_sample_mse(out, t) * (math.nan if not torch.is_grad_enabled() else 1.0)  # noqa: E731
    hist = Trainer(TrainConfig(epochs=10, patience=2)).fit(small_net(), (x, y), (x, y), loss_fn=nan_val)
    assert hist.best_epoch == -1 and hist.stopped_early and len(hist.epochs) == 2


def test_seeded_cpu_runs_are_bit_identical():
    x, y = regression_data()
    cfg = TrainConfig(epochs=3, batch_size=32, seed=7)
    runs = []
    for _ in range(2):
        model = small_net()
        Trainer(cfg).fit(model, (x, y))
        runs.append(weights(model))
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key])
    other = small_net()
    Trainer(TrainConfig(epochs=3, batch_size=32, seed=8)).fit(other, (x, y))  # other shuffle/dropout
    assert not np.array_equal(weights(other)["0.weight"], runs[0]["0.weight"])


def test_checkpoint_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    x, y = regression_data()
    cfg = TrainConfig(epochs=4, batch_size=32, patience=10)
    straight = small_net()
    Trainer(cfg).fit(straight, (x[:192], y[:192]), (x[192:], y[192:]))

    real_save, saves = trainer_mod.save_checkpoint, []

    def crash_after_two(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(1)
        if len(saves) == 2:
            raise KeyboardInterrupt  # the job dies after epoch 2 was checkpointed

    monkeypatch.setattr(trainer_mod, "save_checkpoint", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg).fit(small_net(), (x[:192], y[:192]), (x[192:], y[192:]), checkpoint_dir=tmp_path)
    monkeypatch.setattr(trainer_mod, "save_checkpoint", real_save)
    assert load_checkpoint(tmp_path).extra["epoch"] == 2

    resumed = small_net(seed=123)  # different initial weights: the checkpoint must overwrite them
    hist = Trainer(cfg).fit(resumed, (x[:192], y[:192]), (x[192:], y[192:]), checkpoint_dir=tmp_path,
                            resume=True)
    assert len(hist.epochs) == 4
    for key, value in weights(straight).items():
        np.testing.assert_array_equal(weights(resumed)[key], value, err_msg=key)
    assert config_from_checkpoint(tmp_path) == cfg
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(trainer_mod.CHECKPOINT_FILES)


def test_checkpoint_round_trips_optimizer_state(tmp_path):
    model = small_net()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.95))
    model(torch.randn(4, 6)).sum().backward()
    opt.step()
    trainer_mod.save_checkpoint(tmp_path, model, TrainConfig(), opt.state_dict(), step=1)
    ck = load_checkpoint(tmp_path, small_net(seed=5))
    opt2 = torch.optim.AdamW(small_net().parameters(), lr=1.0)
    opt2.load_state_dict(ck.optimizer_state)
    assert opt2.param_groups[0]["betas"] == (0.8, 0.95) and opt2.param_groups[0]["lr"] == 1e-3
    for pid, state in opt.state_dict()["state"].items():
        torch.testing.assert_close(opt2.state_dict()["state"][pid]["exp_avg"], state["exp_avg"])
    assert ck.step == 1


def test_vrex_reduction():
    per = torch.tensor([1.0, 3.0, 2.0, 2.0])
    assert reduce_loss(per, None, 5.0).item() == pytest.approx(2.0)
    env = torch.tensor([0, 0, 1, 1])
    assert reduce_loss(per, env, 5.0).item() == pytest.approx(2.0)            # equal env means
    env = torch.tensor([0, 1, 1, 1])                                           # means 1 and 7/3
    mean, var = (1 + 7 / 3) / 2, ((1 - 7 / 3) / 2) ** 2
    assert reduce_loss(per, env, 2.0).item() == pytest.approx(mean + 2.0 * var)


def test_ddp_is_gated_on_world_size(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert dist_env() == (1, 0)

    def no_ddp(*_a, **_k):
        raise AssertionError("wrapped in DDP in a single process")

    monkeypatch.setattr(trainer_mod, "wrap_distributed", no_ddp)
    x, y = regression_data(64)
    Trainer(TrainConfig(epochs=1)).fit(small_net(), (x, y))  # single process: never wrapped

    perm = torch.randperm(11)
    parts = [shard(perm, r, 3) for r in range(3)]
    assert {len(p) for p in parts} == {4} and set(torch.cat(parts).tolist()) == set(range(11))
    assert torch.equal(shard(perm, 0, 1), perm)

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert dist_env() == (2, 1)
    with pytest.raises(AssertionError, match="wrapped in DDP"):
        Trainer(TrainConfig(epochs=1)).fit(small_net(), (x, y))


def test_bf16_precision_on_request_and_config_validation():
    x, y = regression_data(64)
    hist = Trainer(TrainConfig(epochs=2, precision="bf16")).fit(small_net(), (x, y), (x, y))
    assert math.isfinite(hist.best_val_loss)
    assert not torch.are_deterministic_algorithms_enabled()  # the global flag is restored
    with pytest.raises(ValueError):
        TrainConfig(precision="fp8")
    with pytest.raises(ValueError):
        TrainConfig(warmup_frac=1.0)
