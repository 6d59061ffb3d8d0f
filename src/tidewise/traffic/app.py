"""`tidewise traffic ...`: a typer sub-app (mounted by tidewise.cli with app.add_typer(traffic_app, name="traffic"))."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

traffic_app = typer.Typer(help="Network traffic under concept drift: lab, flows, train, detect, evaluate.",
                          no_args_is_help=True)

FLOWS_HELP = "flow table: a Parquet file or a directory with flows.parquet + MANIFEST.json (default: the embedded corpus)"


def _console():
    from rich.console import Console

    return Console(width=200)


@traffic_app.command()
def lab(out: Path = typer.Option(Path("runs/traffic-lab"), help="directory for pcaps, manifest and flows.parquet"),
        periods: int = typer.Option(3, min=1, max=3), period_seconds: float = typer.Option(300.0, min=2.0),
        segment_seconds: float = typer.Option(20.0, min=1.0), seed: int = 0,
        flows: bool = typer.Option(True, help="extract the flow table (needs nfstream) when the capture ends")) -> None:
    """Generate real, labelled, drifting traffic in network namespaces (root + Debian packages; installs nothing)."""
    from tidewise.traffic.lab import LabConfig, LabError, run_lab

    console = _console()
    try:
        manifest = run_lab(LabConfig(out=str(out), periods=periods, period_seconds=period_seconds,
                                     segment_seconds=segment_seconds, seed=seed), log=console.print)
    except LabError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; namespaces and servers were cleaned up[/yellow]")
        raise typer.Exit(130)
    console.print(f"manifest: {manifest}")
    if flows:
        _flows(out, out / "flows.parquet", console)


def _flows(lab_dir: Path, out: Path, console) -> None:
    import json

    from tidewise.traffic.flows import build_flow_table

    from tidewise.traffic.flows import SPLT_N
    from tidewise.traffic.netns import package_versions

    df = build_flow_table(lab_dir)
    df.to_parquet(out, compression="zstd", index=False)
    man = json.loads((lab_dir / "lab_manifest.json").read_text())
    man.setdefault("packages", package_versions())
    man["flow_table"] = {"file": out.name, "n_flows": len(df), "splt_packets": SPLT_N,
                         "nfstream": _version("nfstream"), "flows_per_period_app": {
                             f"{p}/{a}": int(n) for (p, a), n in df.groupby(["period", "app"]).size().items()}}
    (out.parent / "MANIFEST.json").write_text(json.dumps(man, indent=1))
    console.print(f"{len(df)} flows -> {out}")
    console.print(df.groupby(["period", "app"]).size().unstack(0).to_string())
    console.print(f"held-out application: {man['held_out']}")


def _version(pkg: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return "absent"


@traffic_app.command()
def flows(lab_dir: Path = typer.Argument(..., help="a `traffic lab` output directory"),
          out: Optional[Path] = typer.Option(None, help="Parquet path (default LAB_DIR/flows.parquet)")) -> None:
    """Extract the labelled flow table (nfstream statistics + first packets) from a lab run's pcaps."""
    _flows(lab_dir, out or lab_dir / "flows.parquet", _console())


@traffic_app.command()
def train(out: Path = typer.Option(Path("runs/traffic-model"), help="bundle directory"),
          flows: Optional[Path] = typer.Option(None, help=FLOWS_HELP), seq_epochs: int = 50,
          cae_epochs: int = 25, trees: int = 100, seed: int = 0) -> None:
    """Fit LightGBM, the GRU, the contrastive-AE detector and conformal calibration on period 0's oldest flows."""
    from tidewise.traffic.evaluate import EvalConfig
    from tidewise.traffic.flows import load_flow_table
    from tidewise.traffic.pipeline import train_bundle

    console = _console()
    df, manifest = load_flow_table(flows)
    cfg = EvalConfig(seq_epochs=seq_epochs, cae_epochs=cae_epochs, n_estimators=trees, seed=seed)
    path = train_bundle(df, manifest, out, cfg, log=console.print)
    console.print(f"bundle -> {path}")


@traffic_app.command()
def detect(model: Path = typer.Option(Path("runs/traffic-model"), help="bundle from `traffic train`"),
           flows: Optional[Path] = typer.Option(None, help=FLOWS_HELP),
           period: Optional[int] = typer.Option(None, help="only flows of this period"),
           window: int = 150, out: Optional[Path] = typer.Option(None, help="write per-flow results (Parquet)")) -> None:
    """Per-flow and per-window drift detection with explanations of which features moved."""
    from tidewise.traffic.flows import load_flow_table
    from tidewise.traffic.pipeline import detect_with_bundle
    from tidewise.traffic.report import _rich

    console = _console()
    df, _ = load_flow_table(flows)
    if period is not None:
        df = df[df["period"] == period].reset_index(drop=True)
    if df.empty:
        console.print(f"[red]error:[/red] no flows{'' if period is None else f' in period {period}'}")
        raise typer.Exit(2)
    res, win = detect_with_bundle(model, df, window=window)
    keys = [k for k in ("period", "app") if k in res]
    if keys:
        summary = res.groupby(keys).agg(n=("cae_flag", "size"), cae_flag_rate=("cae_flag", "mean"),
                                        conformal_flag_rate=("conformal_flag", "mean"),
                                        mean_confidence=("confidence", "mean")).reset_index()
        console.print(_rich(summary, "Per-flow drift flags"))
    flagged = res[res["cae_flag"]]
    if len(flagged):
        top = flagged["moved_features"].str.split(", ").explode().value_counts().head(10)
        console.print(_rich(top.rename_axis("feature").reset_index(name="flagged flows naming it"),
                            "Features that moved in flagged flows (contrastive AE)"))
    console.print(_rich(win, "Windows: KS test on robust features vs training reference"))
    if out:
        res.to_parquet(out, index=False)
        console.print(f"per-flow results -> {out}")


@traffic_app.command()
def evaluate(flows: Optional[Path] = typer.Option(None, help=FLOWS_HELP),
             out: Path = typer.Option(Path("runs/traffic"), help="directory for evaluation.json and report.html"),
             subsample: float = typer.Option(1.0, min=0.01, max=1.0, help="fraction of flows (fast checks)"),
             seq_epochs: int = 50, cae_epochs: int = 25, trees: int = 100, window: int = 150, seed: int = 0) -> None:
    """Temporal evaluation: per-period curve + AUT, robust features, retraining, drift detection, held-out app."""
    import torch

    from tidewise.traffic.evaluate import EvalConfig, run_evaluation
    from tidewise.traffic.flows import load_flow_table
    from tidewise.traffic.report import print_tables, write_html, write_json

    torch.set_num_threads(min(2, torch.get_num_threads()))
    console = _console()
    df, manifest = load_flow_table(flows)
    cfg = EvalConfig(subsample=subsample, seq_epochs=seq_epochs, cae_epochs=cae_epochs, n_estimators=trees,
                     window=window, seed=seed)
    res = run_evaluation(df, manifest, cfg, log=console.print)
    print_tables(res, console)
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"-> {write_json(res, out / 'evaluation.json')}\n-> {write_html(res, out / 'report.html')}")


if __name__ == "__main__":  # until the top-level CLI mounts it: python -m tidewise.traffic.app ...
    traffic_app()
