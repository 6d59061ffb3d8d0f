"""Rich tables and a self-contained HTML report (plotly.js inlined once) of a traffic evaluation."""
from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd


def _fmt(v) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _rich(df: pd.DataFrame, title: str):
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for c in df.columns:
        t.add_column(str(c), justify="right" if pd.api.types.is_numeric_dtype(df[c]) else "left")
    for _, row in df.iterrows():
        t.add_row(*[_fmt(v) for v in row.tolist()])
    return t


_COUNTS = ("n", "tp", "fp", "fn", "windows_before", "false_alarms", "windows_after", "detected_after",
           "delay_flows", "n_drifted_features")


def _ints(df: pd.DataFrame) -> pd.DataFrame:
    """Count columns as nullable integers (a None among them would otherwise print 3.000)."""
    return df.astype({c: "Int64" for c in _COUNTS if c in df.columns})


def result_tables(res: dict) -> dict[str, pd.DataFrame]:
    """The evaluation's tables as DataFrames (shared by the console and the HTML report)."""
    curve = pd.DataFrame(res["curve"])
    acc = curve.pivot(index="model", columns="step", values="accuracy").loc[curve["model"].unique()]
    f1 = curve.pivot(index="model", columns="step", values="macro_f1").loc[curve["model"].unique()]
    up = curve.pivot(index="model", columns="step", values="accuracy_upgraded_apps").loc[curve["model"].unique()]
    up = up.drop(columns=[c for c in up.columns if up[c].isna().all()])
    aut = pd.DataFrame(res["aut"]).set_index("model")
    per_period = acc.add_prefix("acc ").join(f1.add_prefix("F1 ")).join(aut).reset_index()
    det = pd.DataFrame(res["detection"])
    det = det[["detector", "step", "precision", "recall", "f1", "flag_rate", "tp", "fp", "fn"]]
    expl = pd.DataFrame(res["explanations"])
    if len(expl):
        expl = expl.assign(ks_top_features=expl["ks_top_features"].map(
            lambda fs: ", ".join(f"{f} ({d:.2f})" for f, d in fs[:3])))[
            ["step", "app", "upgrade", "n_drifted_features", "cae_flag_rate", "ks_top_features"]]
    tables = {
        "Accuracy and macro-F1 per period (known classes), with AUT": per_period,
        "Accuracy on the upgraded applications' flows only": up.reset_index(),
        "Per-flow drift detection (positive = upgraded app or held-out app)": det,
        "Held-out application (never in training)": pd.DataFrame(res["held_out_test"]),
        "Per-window detection (onset = first flow of period 1)": pd.DataFrame(res["windows"]),
        "Which features moved, per upgraded app (KS vs its period-0 training flows)": expl,
    }
    return {k: _ints(v) for k, v in tables.items()}


def print_tables(res: dict, console=None) -> None:
    from rich.console import Console

    console = console or Console(width=200)
    for title, df in result_tables(res).items():
        if len(df):
            console.print(_rich(df, title))
    console.print(f"robust features ({len(res['robust_features'])}/{len(res['features'])}, fitted on period-0 "
                  f"environments only): {', '.join(res['robust_features'])}")
    console.print(f"{res['n_flows']} flows, split {res['split_counts']}, {res['seconds']:.0f}s")


def _figures(res: dict) -> list[tuple[str, object]]:
    import plotly.graph_objects as go

    figs = []
    curve = pd.DataFrame(res["curve"])
    fig = go.Figure()
    for model, g in curve.groupby("model", sort=False):
        fig.add_scatter(x=g["step"], y=g["accuracy"], mode="lines+markers", name=f"{model} accuracy")
        fig.add_scatter(x=g["step"], y=g["macro_f1"], mode="lines+markers", name=f"{model} macro-F1",
                        line=dict(dash="dot"))
    fig.update_layout(title="Per-period accuracy and macro-F1 (train: oldest 60% of period 0)",
                      yaxis=dict(range=[0, 1.02]))
    figs.append(("Per-period curve", fig))

    fig = go.Figure()
    for name, w in res["timeline"].items():
        w = pd.DataFrame(w)
        if not len(w):
            continue
        if "statistic" in w:
            fig.add_scatter(x=w["end"], y=w["statistic"], mode="lines+markers", name=f"{name} max KS D",
                            marker=dict(color=["crimson" if d else "steelblue" for d in w["drifted"]]),
                            text=w.get("features"), hovertemplate="%{x}: %{y:.2f}<br>%{text}")
        else:
            fig.add_scatter(x=w["end"], y=[1.05] * len(w), mode="markers", name=f"{name} detections",
                            marker=dict(symbol="x", size=9))
    fig.add_vline(x=res["onset"], line=dict(color="black", dash="dash"), annotation_text="period 1 starts")
    fig.update_layout(title="Detection timeline over the time-ordered test stream (red = window flagged)",
                      xaxis_title="test flow index")
    figs.append(("Detection timeline", fig))

    expl = pd.DataFrame(res["explanations"])
    if len(expl):
        fig = go.Figure()
        for _, r in expl.iterrows():
            fs = r["ks_top_features"]
            fig.add_bar(x=[f for f, _ in fs], y=[d for _, d in fs], name=f"{r['step']} {r['app']} ({r['upgrade']})")
        fig.update_layout(title="Feature-drift explanation: KS distance of the top moved features per upgraded app",
                          barmode="group", yaxis_title="KS D")
        figs.append(("Feature-drift explanation", fig))
    rep = pd.DataFrame(res["robust_report"]).sort_values("score", ascending=False).head(30)
    fig = go.Figure(go.Bar(x=rep["feature"], y=rep["score"],
                           marker=dict(color=["seagreen" if k else "gray" for k in rep["kept"]])))
    fig.update_layout(title="Robust-feature scores on period-0 environments (green = kept)")
    figs.append(("Robust features", fig))
    return figs


def write_html(res: dict, path: str | Path) -> Path:
    import plotly.io as pio

    parts = ["<html><head><meta charset='utf-8'><title>tidewise traffic evaluation</title>",
             "<style>body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px}</style></head><body>",
             "<h1>tidewise: network traffic under concept drift</h1>",
             f"<p>{res['n_flows']} flows; held-out application: <b>{html.escape(res['held_out'])}</b>; "
             f"robust features: {len(res['robust_features'])}/{len(res['features'])}.</p>"]
    for i, (title, fig) in enumerate(_figures(res)):
        fig.update_layout(template="plotly_white", height=460)
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs="inline" if i == 0 else False))
    for title, df in result_tables(res).items():
        if len(df):
            parts.append(f"<h2>{html.escape(title)}</h2>")
            parts.append(df.map(_fmt).to_html(index=False, escape=True))
    parts.append("</body></html>")
    p = Path(path)
    p.write_text("\n".join(parts))
    return p


def write_json(res: dict, path: str | Path) -> Path:
    p = Path(path)
    p.write_text(json.dumps(res, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    return p
