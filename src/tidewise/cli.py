"""tidewise command line: datasets, evaluate, forecast, report, bench, drift, traffic.

User errors (a bad data file, too few rows, an unknown model) print ONE line and exit with code 2;
tracebacks are for bugs only.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Lean, honest single-stock forecasting, and a drift toolkit.")
# Leaderboards are wide: when not on a terminal (CI logs, pipes) do not squeeze them to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 220)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 220)

DATA_HELP = "Embedded dataset name (see `tidewise datasets`) or a CSV/Parquet path."
# Three narrow tables rather than one wide one, so an ordinary terminal shows every number.
DIRECTION_RETURN = ("acc", "AUC", "p(acc>up)", "DM p dir", "IC", "IC lo", "IC hi", "R2oos", "DM p ret")
RISK_TRADING = ("pinball", "cov80", "QLIKE", "DM p var", "vol corr", "Sharpe L/S", "SR lo", "SR hi",
                "maxDD")
COMPUTE = ("family", "params", "FLOPs/sample", "train s/fold", "ms@b1", "ms/sample@b256", "peak MB")


def _user_error(message: str) -> None:
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _message(exc: Exception, data: str) -> str:
    """One line for the user; messages that do not already name the data source get it prepended."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(str(text).split())
    return text if text.startswith(str(data)) or "DataError" in type(exc).__name__ else f"{data}: {text}"


def _user_errors():
    """Exceptions that are the user's input, not our bug (anything else keeps its traceback)."""
    from tidewise.data import DataError
    from tidewise.evaluation.walk_forward import NotEnoughData

    return (DataError, NotEnoughData, FileNotFoundError)


def _models(models: Optional[List[str]]) -> tuple[str, ...]:
    from tidewise.evaluation.pipeline import DEFAULT_MODELS
    from tidewise.models.registry import MODELS

    if not models:
        return DEFAULT_MODELS
    names = tuple(n.strip() for m in models for n in m.split(",") if n.strip())
    names = tuple(dict.fromkeys(n for n in (MODELS if names == ("all",) else names)))
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        _user_error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    return names


@app.command()
def datasets() -> None:
    """List the embedded datasets with their date ranges and row counts."""
    from rich.table import Table

    from tidewise.data import list_datasets

    table = Table(title="embedded datasets (offline)")
    frame = list_datasets()
    for col in frame.columns:
        table.add_column(str(col))
    for row in frame.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(table)


def _run_config(data, models, horizon, test_years, context, price, seed, cost_bps, fill, drop_invalid,
                epochs=None, min_train_rows=500):
    from tidewise.evaluation.pipeline import RunConfig
    from tidewise.models.registry import NEURAL

    if price not in ("adj", "raw"):
        _user_error(f"--price must be adj or raw, not {price!r}")
    if fill not in (None, "ffill"):
        _user_error(f"--fill must be ffill (or omitted), not {fill!r}")
    names = _models(models)
    params = {n: {"epochs": epochs} for n in names if n in NEURAL} if epochs is not None else {}
    return RunConfig(data=str(data), models=names, horizon=horizon, test_years=test_years,
                     context=tuple(context or ()), price=price, seed=seed, cost_bps=cost_bps,
                     fill=fill, drop_invalid=drop_invalid, model_params=params,
                     min_train_rows=min_train_rows)


def _prepare_with_notes(data: str, cfg):
    """Load and validate once, print repair notes, and count the folds (for progress totals)."""
    from tidewise.evaluation.pipeline import prepare
    from tidewise.evaluation.walk_forward import plan_folds

    prep = prepare(data, cfg)
    for note in prep.notes:
        err_console.print(f"[yellow]note:[/] {note}")
    return prep, len(plan_folds(prep.X.index, cfg.walk_forward()))


@contextmanager
def _progress(label: str, total: int):
    """A rich progress bar on stderr; yields `step(message)` that advances it by one."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err_console, transient=False) as bar:
        task = bar.add_task(label, total=total)

        def step(msg: str) -> None:
            bar.update(task, description=msg[:60])
            bar.advance(task)

        yield step


@app.command()
def evaluate(
    data: str = typer.Option("msft", "--data", "-d", help=DATA_HELP),
    models: Optional[List[str]] = typer.Option(None, "--models", "-m",
                                               help="Comma-separated registry names, or 'all'."),
    horizon: int = typer.Option(1, min=1, help="Forecast horizon h in trading days."),
    test_years: int = typer.Option(6, min=1, help="Number of final calendar years used as test blocks."),
    context: Optional[List[str]] = typer.Option(None, "--context", "-c",
                                                help="Exogenous series (e.g. sp500, vix, or a path)."),
    price: str = typer.Option("adj", help="adj (adjusted close when present) or raw."),
    seed: int = typer.Option(0),
    cost_bps: float = typer.Option(5.0, help="Trading cost per unit turnover, in basis points."),
    fill: Optional[str] = typer.Option(None, help="Explicit repair: 'ffill' fills NaN/inf cells."),
    drop_invalid: bool = typer.Option(False, help="Explicit repair: drop rows failing validation."),
    epochs: Optional[int] = typer.Option(None, help="Override epochs for neural models."),
    min_train_rows: int = typer.Option(500, min=50, help="Fewest training rows a fold may have."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default runs/<data>-<time>)."),
) -> None:
    """Walk-forward evaluation: leaderboard of every model and naive baseline, and a run folder."""
    from tidewise.evaluation.pipeline import evaluate as run_evaluate
    from tidewise.report.tables import rich_table

    try:
        cfg = _run_config(data, models, horizon, test_years, context, price, seed, cost_bps, fill,
                          drop_invalid, epochs, min_train_rows)
        prep, n_folds = _prepare_with_notes(data, cfg)
        with _progress("walk-forward", n_folds * len(cfg.models) + len(cfg.models)) as step:
            result = run_evaluate(data, cfg, progress=step, prepared=prep)
    except _user_errors() as exc:
        _user_error(_message(exc, data))
        return
    run_dir = out or Path("runs") / f"{Path(str(data)).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    result.save(run_dir)
    title = f"{data}: walk-forward ({test_years} test years, h={horizon})"
    console.print(rich_table(result.leaderboard, f"{title}: direction and return", DIRECTION_RETURN))
    console.print(rich_table(result.leaderboard, f"{title}: quantiles, volatility, trading", RISK_TRADING))
    console.print(rich_table(result.leaderboard, "compute (same run)", COMPUTE))
    bh = result.buy_and_hold
    console.print(f"buy & hold: Sharpe {bh['sharpe']:.2f}, annual return {bh['ann_return']:.3f}, "
                  f"annual vol {bh['ann_vol']:.3f}, max drawdown {bh['max_drawdown']:.3f}")
    console.print(f"run folder: {run_dir}  (report: {run_dir / 'report.html'})  "
                  f"time: {result.seconds:.1f} s")


@app.command()
def forecast(
    data: str = typer.Option("msft", "--data", "-d", help=DATA_HELP),
    models: Optional[List[str]] = typer.Option(["hist_mean,linear,lgbm,garch,lean"], "--models", "-m"),
    horizon: int = typer.Option(1, min=1),
    context: Optional[List[str]] = typer.Option(None, "--context", "-c"),
    price: str = typer.Option("adj"),
    seed: int = typer.Option(0),
) -> None:
    """Next trading day's direction probability, return quantiles and volatility, from the latest row."""
    from rich.table import Table

    from tidewise.evaluation.forecast import forecast as run_forecast

    try:
        cfg = _run_config(data, models, horizon, 1, context, price, seed, 5.0, None, False)
        frame = run_forecast(data, cfg)
    except _user_errors() as exc:
        _user_error(_message(exc, data))
        return
    table = Table(title=f"{data}: forecast for the {horizon}-day return after {frame.attrs['as_of']}")
    cols = ["p_up", "ret", "q10", "q50", "q90", "var", "vol_ann"]
    table.add_column("model", style="bold")
    for c in cols:
        table.add_column(c, justify="right")
    for name, row in frame.iterrows():
        table.add_row(name, *["-" if row[c] != row[c] else f"{row[c]:.5f}" for c in cols])
    console.print(table)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run folder written by `evaluate` or `drift`.")) -> None:
    """(Re)build the self-contained HTML report of a run folder."""
    from tidewise.report.drift_section import write_drift_report
    from tidewise.report.html import write_report

    if (run_dir / "metrics.json").exists():
        console.print(f"wrote {write_report(run_dir)}")
    elif (run_dir / "drift.json").exists():
        console.print(f"wrote {write_drift_report(run_dir)}")
    else:
        _user_error(f"{run_dir}: not a run folder (no metrics.json or drift.json)")


def _frame_table(frame, title: str, digits: int = 3):
    """A rich table of a small DataFrame (index included as the first column)."""
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    frame = frame.reset_index()
    for i, col in enumerate(frame.columns):
        table.add_column(str(col), justify="left" if i == 0 or frame[col].dtype == object else "right",
                         overflow="fold")

    def cell(v) -> str:
        if isinstance(v, float):
            return "-" if v != v else f"{v:.{digits}f}"
        return str(v)

    for row in frame.itertuples(index=False):
        table.add_row(*[cell(v) for v in row])
    return table


@app.command()
def drift(
    data: str = typer.Option("msft", "--data", "-d", help=DATA_HELP),
    model: str = typer.Option("linear", "--model", "-m", help="Base forecaster of the set-ups (registry name)."),
    detector: str = typer.Option("adwin", help="Streaming detector: adwin, kswin or page_hinkley."),
    signal: str = typer.Option("abs_residual",
                               help="What triggers a refit: abs_residual, sq_residual or features."),
    horizon: int = typer.Option(1, min=1, help="Forecast horizon h in trading days."),
    test_years: int = typer.Option(6, min=1, help="Number of final calendar years used as test blocks."),
    n_envs: int = typer.Option(4, min=2, help="Time environments of the robust-feature selector."),
    price: str = typer.Option("adj", help="adj (adjusted close when present) or raw."),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, help="Run folder (default runs/<data>-drift-<time>); "
                                       "an `evaluate` run folder gains drift sections in its report."),
) -> None:
    """Drift timeline, feature attributions and stability, and three retraining set-ups compared."""
    import pandas as pd

    from tidewise.evaluation.drift_analysis import analyze_drift, moved_features, write_drift_json
    from tidewise.evaluation.retraining import DEFAULT_SETUPS, DriftTrigger, evaluate_setups
    from tidewise.report.drift_section import write_drift_report
    from tidewise.report.html import write_report

    try:
        cfg = _run_config(data, [model], horizon, test_years, None, price, seed, 5.0, None, False)
        try:
            trigger = DriftTrigger(detector=detector, signal=signal)
        except ValueError as exc:  # an unknown --detector or --signal is the user's input
            _user_error(str(exc))
        prep, n_folds = _prepare_with_notes(data, cfg)
        with _progress("set-ups", n_folds * len(DEFAULT_SETUPS) + 1) as step:
            comparison = evaluate_setups(data, model, config=cfg, trigger=trigger, n_envs=n_envs,
                                         prepared=prep, progress=step)
            step("drift timeline, batch tests, stability")
            analysis = analyze_drift(data, cfg, detector=detector, prepared=prep, comparison=comparison,
                                     seed=seed)
    except _user_errors() as exc:
        _user_error(_message(exc, data))
        return
    run_dir = out or Path("runs") / f"{Path(str(data)).stem}-drift-{time.strftime('%Y%m%d-%H%M%S')}"
    write_drift_json(analysis, run_dir)
    report_path = write_report(run_dir) if (run_dir / "metrics.json").exists() else write_drift_report(run_dir)

    events = pd.DataFrame(analysis["timeline"], columns=["date", "detector", "stream", "what"])
    shown = events.tail(25).set_index("date")
    console.print(_frame_table(shown, f"{data}: drift timeline ({len(events)} firings"
                               f"{', last 25' if len(events) > 25 else ''})"))
    years = pd.DataFrame([{"year": b["year"], "vs": b["ref_year"], "n moved": len(b["moved"]),
                           "moved (largest first)": ", ".join(b["moved"][:6])}
                          for b in analysis["batch"][-10:]])
    if not years.empty:
        console.print(_frame_table(years.set_index("year"), "year-on-year batch drift (KS, PSI, MMD: "
                                   "moved = flagged by 2 of 3), last 10 years"))
    attrib = moved_features(analysis)
    reasons = {r["feature"]: r["reason"] for r in analysis["stability"]["features"]}
    attrib["why"] = [reasons[f] for f in attrib.index]
    console.print(_frame_table(attrib.rename_axis("feature"),
                               "feature attributions and stability (yearly environments)"))
    cols = ["accuracy", "auc", "ic", "r2_oos", "qlike", "dm_ret_p", "dm_dir_p", "dm_var_p", "n_fits",
            "n_refits", "fit_seconds"]
    table = comparison.table[[c for c in cols if c in comparison.table]]
    console.print(_frame_table(table, f"retraining set-ups ({test_years} test years, h={horizon}); "
                               f"DM p one-sided vs {comparison.baseline}", digits=4))
    console.print(f"run folder: {run_dir}  (drift.json, report: {report_path})")


@app.command()
def bench(
    models: Optional[List[str]] = typer.Option(["all"], "--models", "-m", help="Registry names or 'all'."),
    datasets: str = typer.Option("msft,googl,sp500", help="Comma-separated embedded datasets."),
    test_years: int = typer.Option(6, min=1),
    horizon: int = typer.Option(1, min=1),
    seed: int = typer.Option(0),
    epochs: Optional[int] = typer.Option(None, help="Override epochs for neural models."),
    out: Path = typer.Option(Path("benchmarks/results/suite"), help="Output folder."),
) -> None:
    """The embedded suite: every model and baseline on every embedded dataset, one table + JSON + HTML."""
    from tidewise.evaluation.suite import SUMMARY_COLUMNS, run_suite
    from tidewise.report.tables import rich_table

    try:
        cfg = _run_config("suite", models, horizon, test_years, None, "adj", seed, 5.0, None, False, epochs)
        names = tuple(d.strip() for d in datasets.split(",") if d.strip())
        table = run_suite(cfg, names, out, progress=lambda m: err_console.print(m, highlight=False))
    except _user_errors() as exc:
        _user_error(_message(exc, datasets))
        return
    for ds, t in table.groupby("dataset", sort=False):
        board = t.set_index("model")[[c for c in SUMMARY_COLUMNS if c in t]]
        console.print(rich_table(board, f"{ds}: skill (direction and return)", DIRECTION_RETURN))
        console.print(rich_table(board, f"{ds}: skill (quantiles, volatility, trading)", RISK_TRADING))
        console.print(rich_table(board, f"{ds}: compute", COMPUTE))
    console.print(f"wrote {out / 'suite.json'} and {out / 'suite.html'}")


def _mount_optional() -> None:
    """Sub-apps from other parts of tidewise; each stays importable without the others."""
    try:
        from tidewise.traffic.app import traffic_app
    except ModuleNotFoundError as exc:  # the traffic sub-app is not built in this checkout
        if exc.name != "tidewise.traffic.app":
            raise
        return
    app.add_typer(traffic_app, name="traffic", help="Network traffic under concept drift.")


_mount_optional()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
