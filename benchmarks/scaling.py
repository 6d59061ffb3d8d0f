"""How cost grows with context length: the `lean` flagship against a vanilla Transformer.

Both models get the same width and depth (default d_model=64, n_layers=2) and the same batch; for
each context T in 128, 256, ..., 4096 we time forward + backward (median of --repeats after one
warm-up) and measure its peak memory, fit each model's growth exponent (slope of log time against
log T from 512 to 4096), count forward FLOPs per sample at context 512, and time the scan kernels.

Rows: `lean` (default config, patch_len 4), `lean_p1` (patch_len 1: no patching, every time step
is a token, so the comparison with the per-step Transformer is like for like), `transformer`
(tidewise.models.transformer; torch.nn.TransformerEncoder of the same width/depth only if that
module cannot be imported, and the output says so).

Peak memory, honestly:
- cuda: torch.cuda.max_memory_allocated() over one forward + backward, minus what was allocated
  before it (model, input).
- cpu: PyTorch has no CPU allocator statistics and tracemalloc cannot see its allocations, so each
  (model, T) runs in a fresh subprocess, which resets the kernel's resident-set high-water mark
  (`echo 5 > /proc/self/clear_refs`) after building the model and the input, runs the first
  forward + backward, and reports VmHWM - VmRSS (peak extra resident memory). This includes the
  allocator's own overhead and is Linux-only; elsewhere memory is reported as null.

FLOPs: torch.utils.flop_counter.FlopCounterMode counts matmuls, convolutions and attention, not
elementwise ops (the scan, norms, softmax). Two traps make it undercount a Transformer on CPU, and
both are avoided here: PyTorch's fused CPU attention kernel has no FLOP formula (counted as zero),
so we count with the math attention backend, which decomposes attention into counted matmuls; and
nn.TransformerEncoder in eval mode under no_grad runs a fused fast-path kernel that is also
invisible, so we count with gradients enabled.

Usage: python benchmarks/scaling.py [--quick] [--device auto|cpu|cuda] [--threads 1]
Writes benchmarks/results/scaling.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # runnable from a checkout without installing

RESULTS = ROOT / "benchmarks" / "results" / "scaling.json"
MODELS = ("lean", "lean_p1", "transformer")


# -- models --------------------------------------------------------------------------------------
def build(model: str, n_features: int, context: int, d_model: int, n_layers: int, patch_len: int,
          scan: str = "chunked") -> tuple[torch.nn.Module, str]:
    """-> (module mapping (B, T, F) -> (B, D), description)."""
    if model.startswith("lean"):
        from tidewise.models.lean import Lean, LeanConfig

        p = 1 if model == "lean_p1" else patch_len
        cfg = LeanConfig(n_features, context, d_model=d_model, n_layers=n_layers, patch_len=p, scan=scan)
        return Lean(cfg), f"tidewise Lean(patch_len={p}, expand={cfg.expand}, mlp_ratio={cfg.mlp_ratio})"
    try:
        from tidewise.models.transformer import Transformer, TransformerConfig

        cfg = TransformerConfig(n_features, context, d_model=d_model, n_layers=n_layers, dropout=0.0)
        return Transformer(cfg), f"tidewise Transformer(n_heads={cfg.n_heads}, ff_mult={cfg.ff_mult})"
    except ImportError:
        return _FallbackTransformer(n_features, d_model, n_layers), "FALLBACK torch.nn.TransformerEncoder"


class _FallbackTransformer(torch.nn.Module):
    def __init__(self, n_features: int, d_model: int, n_layers: int) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(n_features, d_model)
        layer = torch.nn.TransformerEncoderLayer(d_model, 4, 2 * d_model, 0.0, batch_first=True, norm_first=True)
        self.enc = torch.nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(self.inp(x))[:, -1]


def forward_flops(module: torch.nn.Module, x: torch.Tensor) -> int:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    # Gradients stay enabled on purpose: in eval mode under no_grad nn.TransformerEncoder switches to
    # a fused "fast path" kernel that the counter cannot see either (it would report ~0 attention).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        module(x)
    return int(counter.get_total_flops())


# -- one measurement, in its own process -------------------------------------------------------
def _proc_status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {k: int(re.search(rf"{k}:\s+(\d+)", text).group(1)) * 1024 for k in ("VmRSS", "VmHWM")}


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(spec: dict) -> dict:
    torch.manual_seed(0)
    device = torch.device(spec["device"])
    if device.type == "cpu":
        torch.set_num_threads(spec["threads"])
    module, desc = build(spec["model"], spec["n_features"], spec["context"], spec["d_model"],
                         spec["n_layers"], spec["patch_len"])
    module = module.to(device).train()
    x = torch.randn(spec["batch"], spec["context"], spec["n_features"], device=device)

    def step() -> None:
        module.zero_grad(set_to_none=True)
        module(x).pow(2).mean().backward()

    peak = None
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    elif _reset_hwm():  # first step in a fresh process: nothing cached by the allocator yet
        before = _proc_status()["VmRSS"]
        step()
        peak = _proc_status()["VmHWM"] - before
    else:
        step()
    times, cpu_times = [], []
    for _ in range(spec["repeats"]):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    params = sum(p.numel() for p in module.parameters())
    return {"model": spec["model"], "context": spec["context"], "desc": desc, "params": params,
            "time_s": statistics.median(times), "times_s": times,
            "cpu_time_s": statistics.median(cpu_times), "peak_mem_bytes": peak}


def run_isolated(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"measurement {spec['model']} T={spec['context']} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- scan kernels ----------------------------------------------------------------------------------
def scan_speed(device: torch.device, batch: int, length: int, width: int, repeats: int) -> dict:
    from tidewise.models.scan import scan_chunked, scan_reference

    torch.manual_seed(0)
    a = torch.rand(batch, length, width, device=device).requires_grad_()
    b = torch.randn(batch, length, width, device=device).requires_grad_()
    out = {"batch": batch, "length": length, "width": width}
    for name, fn in (("reference", scan_reference), ("chunked", scan_chunked)):
        fwd, both = [], []
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            with torch.no_grad():
                fn(a, b)
            t1 = time.perf_counter()
            fn(a, b).sum().backward()
            t2 = time.perf_counter()
            if i:  # the first round is a warm-up
                fwd.append(t1 - t0)
                both.append(t2 - t1)
        out[name] = {"forward_s": statistics.median(fwd), "forward_backward_s": statistics.median(both)}
    out["speedup_forward"] = out["reference"]["forward_s"] / out["chunked"]["forward_s"]
    out["speedup_forward_backward"] = out["reference"]["forward_backward_s"] / out["chunked"]["forward_backward_s"]
    return out


def fit_exponent(xs: list[float], ys: list[float]) -> float | None:
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sum((p[0] - mx) ** 2 for p in pts)


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="reduced grid for a smoke test")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--contexts", default="128,256,512,1024,2048,4096")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--n-features", type=int, default=15)
    ap.add_argument("--patch-len", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per measurement")
    ap.add_argument("--fit-from", type=int, default=512, help="smallest context in the exponent fit")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
        return {}

    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    contexts = [int(c) for c in args.contexts.split(",")]
    repeats, batch, scan_len = args.repeats, args.batch, 1024
    if args.quick:
        contexts, repeats, batch, scan_len = [c for c in contexts if c <= 512][:3], 1, 2, 256
    models = [m for m in args.models.split(",") if m]
    base = {"device": device, "threads": args.threads, "batch": batch, "repeats": repeats,
            "n_features": args.n_features, "d_model": args.d_model, "n_layers": args.n_layers,
            "patch_len": args.patch_len}

    load_start = list(os.getloadavg())  # other jobs on the machine skew wall time: recorded, not hidden
    rows = []
    for model in models:
        for ctx in contexts:
            row = run_isolated({**base, "model": model, "context": ctx})
            console.log(f"{model:12s} T={ctx:5d}  {row['time_s'] * 1e3:9.1f} ms  {row['cpu_time_s'] * 1e3:9.1f} CPU ms  "
                        f"{(row['peak_mem_bytes'] or 0) / 2**20:8.1f} MiB")
            rows.append(row)

    fit_ctx = [c for c in contexts if c >= args.fit_from] if not args.quick else contexts
    exponents = {}
    for model in models:
        mine = [r for r in rows if r["model"] == model and r["context"] in fit_ctx]
        exponents[model] = {
            "time": fit_exponent([r["context"] for r in mine], [r["time_s"] for r in mine]),
            # CPU seconds of this process: robust to other jobs on a shared machine (same as wall at 1 thread)
            "cpu_time": fit_exponent([r["context"] for r in mine], [r["cpu_time_s"] for r in mine]),
            "memory": fit_exponent([r["context"] for r in mine], [r["peak_mem_bytes"] or 0 for r in mine]),
            "fit_contexts": [r["context"] for r in mine]}

    flop_ctx = 512
    x = torch.randn(1, flop_ctx, args.n_features)
    flops = {m: forward_flops(build(m, args.n_features, flop_ctx, args.d_model, args.n_layers,
                                    args.patch_len)[0].eval(), x) for m in models}
    torch.set_num_threads(args.threads)
    scan = scan_speed(torch.device(device), 8, scan_len, 2 * args.d_model, max(repeats, 3))
    ratio = {m: flops[m] / flops["transformer"] for m in models if "transformer" in flops}
    targets = {}
    if "lean" in exponents and "transformer" in ratio and not args.quick:
        targets = {"flops_ratio_at_512_le_0.20": ratio["lean"] <= 0.20,
                   "lean_time_exponent_le_1.2": (exponents["lean"]["time"] or 9) <= 1.2}

    table = Table(title=f"forward+backward, batch {batch}, d_model {args.d_model}, "
                        f"n_layers {args.n_layers}, device {device}, threads {args.threads}")
    table.add_column("model")
    for ctx in contexts:
        table.add_column(f"T={ctx}", justify="right")
    for model in models:
        mine = {r["context"]: r for r in rows if r["model"] == model}
        table.add_row(f"{model} time ms", *(f"{mine[c]['time_s'] * 1e3:.1f}" for c in contexts))
        table.add_row(f"{model} CPU ms", *(f"{mine[c]['cpu_time_s'] * 1e3:.1f}" for c in contexts))
        table.add_row(f"{model} peak MiB",
                      *(f"{(mine[c]['peak_mem_bytes'] or float('nan')) / 2**20:.1f}" for c in contexts))
    console.print(table)
    summary = Table(title="growth exponents, FLOPs per sample at T=512")
    for col in ("model", "params", "time exp.", "CPU-time exp.", "memory exp.", "fwd FLOPs/sample",
                "vs transformer"):
        summary.add_column(col, justify="right")
    for model in models:
        e = exponents[model]
        params = next(r["params"] for r in rows if r["model"] == model)
        summary.add_row(model, f"{params:,}", _fmt(e["time"]), _fmt(e["cpu_time"]), _fmt(e["memory"]),
                        f"{flops[model]:,}",
                        _fmt(ratio.get(model), "{:.1%}"))
    console.print(summary)
    console.print(f"scan B=8 T={scan_len} D={2 * args.d_model}: reference fwd+bwd "
                  f"{scan['reference']['forward_backward_s'] * 1e3:.1f} ms, chunked "
                  f"{scan['chunked']['forward_backward_s'] * 1e3:.1f} ms "
                  f"(x{scan['speedup_forward_backward']:.1f}); forward only x{scan['speedup_forward']:.1f}")
    descs = {r["model"]: r["desc"] for r in rows}
    for model, desc in descs.items():
        console.print(f"{model}: {desc}")
    if targets:
        console.print(f"targets: {targets}")

    doc = {"settings": {**base, "contexts": contexts, "quick": args.quick, "torch": torch.__version__,
                        "cpu_count": os.cpu_count(), "load_avg_at_start": load_start,
                        "load_avg_at_end": list(os.getloadavg())},
           "models": descs, "rows": rows, "exponents": exponents,
           "flops_per_sample_at_512": flops, "flops_ratio_vs_transformer": ratio, "scan": scan,
           "targets": targets,
           "memory_method": "cuda max_memory_allocated" if device == "cuda"
           else "peak RSS increase of the first forward+backward in a fresh subprocess (clear_refs)",
           "flops_method": "FlopCounterMode with the math attention backend (matmul/conv/attention only)"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    console.print(f"wrote {out}")
    return doc


def _fmt(v: float | None, spec: str = "{:.2f}") -> str:
    return "-" if v is None else spec.format(v)


if __name__ == "__main__":
    main()
