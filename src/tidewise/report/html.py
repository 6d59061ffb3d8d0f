"""Self-contained HTML report of a run folder (plotly.js inlined once, so it opens offline).

Everything is rebuilt from the files in the run folder (`metrics.json`, `predictions.parquet`,
optional `drift.json`), so `tidewise report RUN_DIR` can regenerate it at any time.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from tidewise.evaluation import trading as T
from tidewise.report.tables import formatted


def _fig_html(fig: go.Figure, first: bool) -> str:
    fig.update_layout(template="plotly_white", height=420, margin=dict(l=50, r=20, t=50, b=40))
    return pio.to_html(fig, full_html=False, include_plotlyjs="inline" if first else False)


def pnl_figure(pred: pd.DataFrame, cost_bps: float) -> go.Figure:
    """Cumulative wealth after costs of trading each model's sign (long/short), with buy-and-hold."""
    from tidewise.evaluation.scoring import trading_signal

    fig = go.Figure()
    for model, f in pred.groupby("model", sort=False):
        f = f.sort_values("date").set_index("date")
        signal = trading_signal(f)
        if signal is None:
            continue
        eq = T.equity_curve(T.strategy_returns(signal, f["next_ret"], cost_bps=cost_bps))
        fig.add_scatter(x=eq.index, y=eq.to_numpy(), mode="lines", name=model)
    one = pred.drop_duplicates("date").sort_values("date").set_index("date")["next_ret"]
    bh = T.equity_curve(T.buy_and_hold(one.dropna(), cost_bps))
    fig.add_scatter(x=bh.index, y=bh.to_numpy(), mode="lines", name="buy & hold",
                    line=dict(color="black", width=3, dash="dash"))
    fig.update_layout(title=f"Cumulative P&L after {cost_bps:g} bps costs (long/short on forecast sign)",
                      yaxis_title="wealth")
    return fig


def volatility_figure(pred: pd.DataFrame) -> go.Figure:
    """Predicted vs realised volatility (annualised), realised smoothed over 21 days for legibility."""
    fig = go.Figure()
    vol = pred[pred["var"].notna()]
    realised = None
    for model, f in vol.groupby("model", sort=False):
        f = f.sort_values("date").set_index("date")
        fig.add_scatter(x=f.index, y=np.sqrt(f["var"] * 252), mode="lines", name=model)
        realised = f["y_var"]
    if realised is not None:
        fig.add_scatter(x=realised.index, y=np.sqrt(realised.rolling(21).mean() * 252), mode="lines",
                        name="realised (21d mean)", line=dict(color="black", width=2))
    fig.update_layout(title="Predicted vs realised volatility (annualised)", yaxis_title="vol")
    return fig


def reliability_figure(pred: pd.DataFrame, bins: int = 10) -> go.Figure:
    """Reliability diagram: mean forecast probability vs observed up-frequency per probability decile."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line=dict(dash="dot", color="grey"))
    for model, f in pred[pred["p_up"].notna()].groupby("model", sort=False):
        f = f.dropna(subset=["y_dir"])
        if f["p_up"].nunique() < 3:
            continue  # constant or 0/1 forecasts have no curve
        q = pd.qcut(f["p_up"].rank(method="first"), bins, labels=False)
        g = f.groupby(q).agg(p=("p_up", "mean"), freq=("y_dir", "mean"), n=("y_dir", "size"))
        fig.add_scatter(x=g["p"], y=g["freq"], mode="lines+markers", name=model,
                        hovertext=[f"n={n}" for n in g["n"]])
    fig.update_layout(title="Reliability of direction probabilities", xaxis_title="forecast P(up)",
                      yaxis_title="observed frequency of up")
    return fig


def fold_figure(folds: pd.DataFrame, metric: str) -> go.Figure:
    fig = go.Figure()
    for model, f in folds.dropna(subset=[metric]).groupby("model", sort=False):
        fig.add_scatter(x=f["year"], y=f[metric], mode="lines+markers", name=model)
    fig.update_layout(title=f"Per-fold {metric}", xaxis_title="test year", yaxis_title=metric)
    return fig


def _table_html(df: pd.DataFrame) -> str:
    return df.to_html(classes="tbl", border=0, escape=True)


def write_report(run_dir: str | Path, extra_sections: list[tuple[str, str]] | None = None) -> Path:
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    pred = pd.read_parquet(run_dir / "predictions.parquet").dropna(subset=["y_ret"])
    board = pd.DataFrame.from_dict(metrics["leaderboard"], orient="index")
    board.index.name = "model"
    folds = pd.DataFrame(metrics["per_fold"])
    cost = float(config.get("cost_bps", 5.0))
    figs = [pnl_figure(pred, cost), volatility_figure(pred), reliability_figure(pred)]
    figs += [fold_figure(folds, m) for m in ("accuracy", "ic", "qlike") if m in folds]
    sections = [("Leaderboard", _table_html(formatted(board)) + _legend(board))]
    bh = metrics.get("buy_and_hold", {})
    sections.append(("Buy and hold", "<p>" + ", ".join(f"{k}: {v:.3f}" for k, v in bh.items()) + "</p>"))
    sections += [("", _fig_html(f, i == 0)) for i, f in enumerate(figs)]
    if not folds.empty:
        sections.append(("Per-fold metrics", _table_html(folds.round(4).set_index(["model", "fold"]))))
    drift_path = run_dir / "drift.json"
    if drift_path.exists():
        from tidewise.report.drift_section import drift_sections

        sections += drift_sections(json.loads(drift_path.read_text()), first_plot=False)
    sections += extra_sections or []
    notes = metrics.get("notes") or []
    body = "\n".join(f"<h2>{html.escape(t)}</h2>\n{c}" if t else c for t, c in sections)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>tidewise report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}}
table.tbl{{border-collapse:collapse;font-size:12px}} .tbl td,.tbl th{{padding:3px 6px;border-bottom:1px solid #ddd;text-align:right}}
code{{background:#f4f4f4;padding:1px 4px}}</style></head><body>
<h1>tidewise run: {html.escape(str(config.get('data')))}</h1>
<p>horizon {config.get('horizon')} day(s), {config.get('test_years')} test years, costs {cost:g} bps,
seed {config.get('seed')}, run time {metrics.get('seconds', float('nan')):.1f} s.</p>
{''.join(f'<p><em>note: {html.escape(n)}</em></p>' for n in notes)}
{body}
</body></html>"""
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


def _legend(board: pd.DataFrame) -> str:
    refs = [f"{c[3:6]} vs {board[c].dropna().iloc[0]}" for c in ("dm_dir_vs", "dm_ret_vs", "dm_var_vs")
            if c in board and board[c].notna().any()]
    return ("<p>DM p: one-sided Diebold-Mariano p-value (HAC, Harvey-Leybourne-Newbold) that the "
            f"model's loss is lower than the baseline's ({html.escape('; '.join(refs))}). "
            "p(acc&gt;up): one-sided binomial test of accuracy against always-up. "
            "lo/hi: 95% block-bootstrap intervals. Compute columns measured in this run.</p>")
