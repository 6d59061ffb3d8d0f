"""The one trainer for every neural model: AdamW, warmup + cosine, clipping, early stopping,
seeding, devices, bf16 autocast, optional DDP, safetensors checkpoints and resume.

Shape legend: B batch, K target columns.

Data protocol: `train` and `val` are objects with `__len__()` and `take(idx) -> (x, y)` or
`(x, y, env)` (see windows.WindowDataset), or plain tuples of arrays, wrapped by ArrayBatches.
`loss_fn(model(x), y)` returns a per-sample loss (B,), so the trainer can group it by environment.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from tidewise.models.heads import LossWeights

CHECKPOINT_FILES = ("config.json", "model.safetensors", "trainer.safetensors")


@dataclass(frozen=True)
class TrainConfig:
    # defaults sized so every zoo model fits a ~7,000-row fold in seconds on one CPU core
    lr: float = 1e-2
    weight_decay: float = 1e-2
    epochs: int = 6
    max_steps: int | None = None  # when set, it bounds the run instead of `epochs`
    batch_size: int = 256
    warmup_frac: float = 0.1
    min_lr_frac: float = 0.05     # cosine decays to this fraction of lr
    grad_clip: float = 1.0
    patience: int = 3             # epochs without validation improvement before stopping
    seed: int = 0
    device: str = "auto"          # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"       # auto (bf16 autocast on cuda only) | fp32 | bf16
    loss_weights: LossWeights = field(default_factory=LossWeights)
    vrex_weight: float = 0.0      # V-REx: weight of the variance of per-environment losses
    progress: bool = False        # rich progress bar over epochs (rank 0 only)
    # Intra-op CPU threads while training. 1 by default: the zoo's models are too small to gain from
    # more, OpenMP spin-waiting made them 2-5x slower on a busy 2-core machine (measured), and a fixed
    # count keeps seeded CPU runs bit-identical across machines. None leaves torch's setting alone.
    cpu_threads: int | None = 1

    def __post_init__(self) -> None:
        if isinstance(self.loss_weights, dict):  # rebuilt from JSON
            object.__setattr__(self, "loss_weights", LossWeights(**self.loss_weights))
        if self.lr <= 0 or self.batch_size < 1 or self.epochs < 1 or self.patience < 1:
            raise ValueError(f"invalid TrainConfig {self}")
        if not 0.0 <= self.warmup_frac < 1.0 or self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError("warmup_frac must be in [0, 1) and precision auto|fp32|bf16")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class History:
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = math.inf
    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


def resolve_device(device: str = "auto") -> torch.device:
    """"auto" -> cuda (this rank's GPU under torchrun), else mps, else cpu."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def dist_env() -> tuple[int, int]:
    """(world size, rank) as set by torchrun; (1, 0) in a plain process."""
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))


def wrap_distributed(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP applied from outside the model (the model file stays single-device)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def reduce_loss(per_sample: torch.Tensor, env: torch.Tensor | None, vrex_weight: float) -> torch.Tensor:
    """Plain mean; with environments (V-REx), the mean of the per-environment mean losses plus
    vrex_weight * their variance (penalty from the drift toolkit)."""
    if env is None:
        return per_sample.mean()
    from tidewise.drift.invariance import per_env_losses, vrex_penalty

    per_env = per_env_losses(per_sample, env)  # (E,)
    return per_env.mean() + vrex_weight * vrex_penalty(per_env)


def shard(perm: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's share of an epoch's permutation. Like DistributedSampler, the permutation is
    padded by wrapping around so every rank runs the same number of steps (DDP would hang otherwise)."""
    if world <= 1:
        return perm
    pad = (-len(perm)) % world
    return torch.cat([perm, perm[:pad]])[rank::world]


def per_sample_mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out.float() - y) ** 2).reshape(len(y), -1).mean(dim=1)


class ArrayBatches:
    """Tuple of arrays (first axis = samples) behind the trainer's `take(idx)` protocol."""

    def __init__(self, *arrays: Any) -> None:
        self.arrays = [torch.as_tensor(np.asarray(a)) for a in arrays]

    def __len__(self) -> int:
        return len(self.arrays[0])

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(a[idx] for a in self.arrays)


def warmup_cosine(step: int, total: int, warmup_frac: float, min_frac: float) -> float:
    warm = max(1, int(round(warmup_frac * total)))
    if step < warm:
        return (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return min_frac + (1.0 - min_frac) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Trainer:
    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()
        self.device = resolve_device(self.config.device)

    # -- precision ----------------------------------------------------------------------------
    def _autocast(self) -> Any:
        p = self.config.precision
        bf16 = p == "bf16" or (p == "auto" and self.device.type == "cuda")
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)

    def _to_device(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(self.device, non_blocking=True) for t in batch)

    # -- training -----------------------------------------------------------------------------
    def fit(self, model: nn.Module, train: Any, val: Any = None,
            loss_fn: Callable[[Any, torch.Tensor], torch.Tensor] = per_sample_mse,
            checkpoint_dir: str | Path | None = None, resume: bool = False) -> History:
        """Train `model` in place; the best-validation weights are restored at the end."""
        cfg = self.config
        train = ArrayBatches(*train) if isinstance(train, (tuple, list)) else train
        val = ArrayBatches(*val) if isinstance(val, (tuple, list)) else val
        if len(train) == 0:
            raise ValueError("no training samples")
        world, rank = dist_env()
        torch.manual_seed(cfg.seed)
        deterministic_before = torch.are_deterministic_algorithms_enabled()
        threads_before = torch.get_num_threads()
        if self.device.type == "cpu":  # bit-identical CPU runs; GPU runs are seeded but not forced
            torch.use_deterministic_algorithms(True, warn_only=True)
            if cfg.cpu_threads:
                torch.set_num_threads(cfg.cpu_threads)
        try:
            model.to(self.device)
            net = wrap_distributed(model, self.device) if world > 1 else model
            return self._loop(model, net, train, val, loss_fn, world, rank, checkpoint_dir, resume)
        finally:
            torch.use_deterministic_algorithms(deterministic_before)
            torch.set_num_threads(threads_before)

    def _loop(self, model: nn.Module, net: nn.Module, train: Any, val: Any, loss_fn: Callable,
              world: int, rank: int, checkpoint_dir: str | Path | None, resume: bool) -> History:
        cfg = self.config
        decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
        per_rank = math.ceil(len(train) / world)
        steps_per_epoch = math.ceil(per_rank / cfg.batch_size)
        total = cfg.max_steps or cfg.epochs * steps_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, total, cfg.warmup_frac, cfg.min_lr_frac))
        gen = torch.Generator().manual_seed(cfg.seed)
        hist, best_state, bad, epoch = History(), None, 0, 0
        if resume and checkpoint_dir is not None and (Path(checkpoint_dir) / "config.json").exists():
            ck = load_checkpoint(checkpoint_dir, model)
            opt.load_state_dict(ck.optimizer_state)
            sched.load_state_dict(ck.extra["scheduler"])
            gen.set_state(ck.tensors["rng.shuffle"])
            torch.set_rng_state(ck.tensors["rng.torch"])
            hist = History(**ck.extra["history"])
            bad, epoch = ck.extra["bad_epochs"], ck.extra["epoch"]
            best_state = {k[5:]: v for k, v in ck.tensors.items() if k.startswith("best.")} or None
        has_val = val is not None and len(val) > 0
        start = time.perf_counter() - hist.seconds
        progress = _progress(cfg.progress and rank == 0, cfg.epochs)
        while epoch < cfg.epochs or cfg.max_steps:
            if hist.steps >= total or bad >= cfg.patience:
                break
            perm = shard(torch.randperm(len(train), generator=gen), rank, world)
            net.train()
            running, seen = 0.0, 0
            for idx in perm.split(cfg.batch_size):
                x, y, *env = self._to_device(train.take(idx))
                with self._autocast():
                    out = net(x)
                loss = reduce_loss(loss_fn(out, y), env[0] if env else None, cfg.vrex_weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
                hist.steps += 1
                running, seen = running + float(loss.detach()) * len(idx), seen + len(idx)
                if hist.steps >= total:
                    break
            val_loss = self.evaluate(model, val, loss_fn) if has_val else math.nan
            hist.epochs.append({"epoch": epoch, "train_loss": running / max(seen, 1), "val_loss": val_loss,
                                "lr": float(sched.get_last_lr()[0])})
            score = val_loss if has_val else -epoch  # no validation: keep the last epoch; NaN never wins
            if score < hist.best_val_loss:
                hist.best_val_loss, hist.best_epoch, bad = score, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
            hist.stopped_early = bad >= cfg.patience
            epoch += 1
            hist.seconds = time.perf_counter() - start
            if progress is not None:
                progress.update(progress.task_ids[0], advance=1, description=f"val {val_loss:.4f}")
            if checkpoint_dir is not None and rank == 0:
                tensors = {"rng.shuffle": gen.get_state(), "rng.torch": torch.get_rng_state()}
                tensors.update({f"best.{k}": v for k, v in (best_state or {}).items()})
                save_checkpoint(checkpoint_dir, model, cfg, opt.state_dict(), hist.steps, tensors,
                                {"scheduler": sched.state_dict(), "history": asdict(hist),
                                 "bad_epochs": bad, "epoch": epoch})
        if progress is not None:
            progress.stop()
        if best_state is not None:
            model.load_state_dict(best_state)
        if not has_val:
            hist.best_val_loss = math.nan
        hist.seconds = time.perf_counter() - start
        return hist

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Any, loss_fn: Callable, batch_size: int = 1024) -> float:
        """Mean per-sample loss over `data` in order (no environment weighting, no penalty)."""
        model.eval()
        total = 0.0
        for idx in torch.arange(len(data)).split(batch_size):
            x, y, *_ = self._to_device(data.take(idx))
            with self._autocast():
                out = model(x)
            total += float(loss_fn(out, y).double().sum())
        return total / max(len(data), 1)


def _progress(enabled: bool, epochs: int) -> Any:
    if not enabled:
        return None
    from rich.progress import Progress

    progress = Progress()
    progress.add_task("training", total=epochs)
    progress.start()
    return progress


# -- checkpoints: weights in safetensors, everything else in JSON (never pickle) -------------
@dataclass
class Checkpoint:
    config: dict[str, Any]
    step: int
    optimizer_state: dict[str, Any] | None
    tensors: dict[str, torch.Tensor]
    extra: dict[str, Any]


def save_checkpoint(directory: str | Path, model: nn.Module, config: Any,
                    optimizer_state: dict[str, Any] | None = None, step: int = 0,
                    tensors: dict[str, torch.Tensor] | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write model.safetensors, trainer.safetensors (optimizer moments, RNG, extras) and config.json."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # unwrap DDP
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()},
              str(directory / "model.safetensors"))
    flat = {k: v.detach().cpu().contiguous().clone() for k, v in (tensors or {}).items()}
    opt_json = None
    if optimizer_state is not None:
        scalars: dict[str, dict[str, Any]] = {}
        for pid, state in optimizer_state["state"].items():
            for name, value in state.items():
                if torch.is_tensor(value):
                    flat[f"opt.{pid}.{name}"] = value.detach().cpu().contiguous().clone()
                else:
                    scalars.setdefault(str(pid), {})[name] = value
        opt_json = {"param_groups": optimizer_state["param_groups"], "scalars": scalars}
    save_file(flat or {"_empty": torch.zeros(1)}, str(directory / "trainer.safetensors"))
    cfg = config.to_dict() if hasattr(config, "to_dict") else asdict(config) if hasattr(
        config, "__dataclass_fields__") else dict(config)
    doc = {"config": cfg, "step": int(step), "optimizer": opt_json, "extra": extra or {}}
    tmp = directory / "config.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(directory / "config.json")  # the JSON is written last: its presence marks completeness
    return directory


def load_checkpoint(directory: str | Path, model: nn.Module | None = None) -> Checkpoint:
    """Read a checkpoint; load its weights into `model` (strict) when given."""
    from safetensors.torch import load_file

    directory = Path(directory)
    doc = json.loads((directory / "config.json").read_text())
    if model is not None:
        getattr(model, "module", model).load_state_dict(load_file(str(directory / "model.safetensors")))
    flat = load_file(str(directory / "trainer.safetensors"))
    flat.pop("_empty", None)
    opt_state = None
    if doc["optimizer"] is not None:
        state: dict[int, dict[str, Any]] = {}
        for key in [k for k in flat if k.startswith("opt.")]:
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = flat.pop(key)
        for pid, scalars in doc["optimizer"]["scalars"].items():
            state.setdefault(int(pid), {}).update(scalars)
        groups = [{**g, **({"betas": tuple(g["betas"])} if "betas" in g else {})}
                  for g in doc["optimizer"]["param_groups"]]
        opt_state = {"state": state, "param_groups": groups}
    return Checkpoint(config=doc["config"], step=doc["step"], optimizer_state=opt_state,
                      tensors=flat, extra=doc["extra"])


def config_from_checkpoint(directory: str | Path) -> TrainConfig:
    return TrainConfig(**load_checkpoint(directory).config)
