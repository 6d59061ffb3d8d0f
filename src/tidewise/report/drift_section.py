"""Drift sections of the HTML report, built from a run folder's ``drift.json``.

``drift_sections(drift_json, first_plot)`` returns (title, html) pairs; ``html.write_report`` appends
them when the folder has a drift.json. Figures are plotly with ``include_plotlyjs=False`` unless
``first_plot`` (then the first figure inlines plotly.js, for a page that has no other plot).
``write_drift_report(run_dir)`` writes a drift-only report.html for a folder without metrics.json.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

_STREAM_STYLE = {"returns": ("triangle-up", "#d62728", 11), "volatility": ("diamond", "#ff7f0e", 10),
                 "features": ("x", "#1f77b4", 6)}
_MAX_ROWS = 60


def _fig(fig: go.Figure, inline_js: bool, height: int = 460) -> str:
    fig.update_layout(template="plotly_white", height=height, margin=dict(l=60, r=20, t=50, b=40))
    return pio.to_html(fig, full_html=False, include_plotlyjs="inline" if inline_js else False)


def _table(df: pd.DataFrame) -> str:
    return df.to_html(classes="tbl", border=0, escape=True, index=False, na_rep="-")


def timeline_figure(d: dict[str, Any]) -> go.Figure:
    """Price line with detector firings as markers, refits as vertical lines, test years shaded."""
    price = pd.Series(d["price"]["close"], index=pd.to_datetime(d["price"]["dates"]), dtype="float64")
    fig = go.Figure()
    fig.add_scatter(x=price.index, y=price.to_numpy(), mode="lines", name="close",
                    line=dict(color="black", width=1))
    events = pd.DataFrame(d.get("timeline") or [], columns=["date", "stream", "what"])
    for stream, g in events.groupby("stream", sort=False):
        symbol, color, size = _STREAM_STYLE.get(stream, ("circle", "grey", 7))
        at = pd.to_datetime(g["date"])
        fig.add_scatter(x=at, y=price.reindex(at).to_numpy(), mode="markers",
                        name=f"{d.get('detector', '')} on {stream} ({len(g)})",
                        marker=dict(symbol=symbol, color=color, size=size),
                        hovertext=g["what"].tolist(), hoverinfo="x+text")
    lo, hi = float(price.min()), float(price.max())
    fits = pd.DataFrame((d.get("setups") or {}).get("fits") or [],
                        columns=["setup", "reason", "as_of", "first_prediction", "drifted_features"])
    colors = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for i, (setup, g) in enumerate(fits.groupby("setup", sort=False)):
        drift = g[g["reason"].str.startswith("drift")]
        if drift.empty:
            continue
        xs, ys, text = [], [], []
        for row in drift.itertuples():
            x = pd.Timestamp(row.as_of)
            moved = ", ".join(row.drifted_features[:6]) or "-"
            xs += [x, x, None]
            ys += [lo, hi, None]
            text += [f"{setup} refit ({row.reason}); moved: {moved}"] * 2 + [""]
        fig.add_scatter(x=xs, y=ys, mode="lines", name=f"refits: {setup} ({len(drift)})",
                        line=dict(color=colors[i % len(colors)], dash="dash", width=1.5),
                        hovertext=text, hoverinfo="x+text")
    for year in d.get("test_years") or []:
        fig.add_vrect(x0=f"{year}-01-01", x1=f"{year}-12-31", fillcolor="#1f77b4", opacity=0.05,
                      line_width=0, layer="below")
    fig.update_layout(title="Drift timeline over the price (shaded: walk-forward test years)",
                      yaxis_title="close", yaxis_type="log", legend=dict(orientation="h", y=-0.15))
    return fig


def stability_figure(d: dict[str, Any]) -> go.Figure:
    """Heatmap of each feature's IC with the h-day return, one column per calendar year."""
    stab = d["stability"]
    feats = [r["feature"] for r in stab["features"]]
    z = [r["ic"] for r in stab["features"]]
    labels = [f"{f} {'(kept)' if r['kept'] else ''}" for f, r in zip(feats, stab["features"])]
    fig = go.Figure(go.Heatmap(z=z, x=[str(e) for e in stab["environments"]], y=labels,
                               colorscale="RdBu", zmid=0.0, colorbar=dict(title="IC")))
    fig.update_layout(title="Feature stability: rank IC with the forward return, per year",
                      xaxis_title="environment (calendar year)", yaxis=dict(autorange="reversed"))
    return fig


def sign_agreement_figure(d: dict[str, Any]) -> go.Figure:
    rows = sorted(d["stability"]["features"], key=lambda r: -(r["sign_agreement"] or 0.0))
    fig = go.Figure(go.Bar(
        x=[r["feature"] for r in rows], y=[r["sign_agreement"] for r in rows],
        marker_color=["#2ca02c" if r["kept"] else "#bbbbbb" for r in rows],
        hovertext=[r["reason"] for r in rows]))
    fig.update_layout(title="Share of years whose IC has the majority sign (green: kept)",
                      yaxis=dict(range=[0, 1], title="sign agreement"))
    return fig


def _timeline_table(d: dict[str, Any]) -> str:
    ev = pd.DataFrame(d.get("timeline") or [], columns=["date", "detector", "stream", "what"])
    note = "" if len(ev) <= _MAX_ROWS else f"<p>last {_MAX_ROWS} of {len(ev)} firings</p>"
    return note + _table(ev.tail(_MAX_ROWS))


def _batch_table(d: dict[str, Any]) -> str:
    rows = []
    for b in d.get("batch") or []:
        row = {"year": b["year"], "vs": b["ref_year"], "n moved": len(b["moved"]),
               "moved (largest first)": ", ".join(b["moved"][:8])}
        if "mmd" in b:
            row["MMD p"] = b["mmd"]["p_value"]
        rows.append(row)
    return _table(pd.DataFrame(rows).round(4)) if rows else "<p>no complete years to compare</p>"


def _stability_table(d: dict[str, Any]) -> str:
    cols = ["feature", "ic_mean", "ic_std", "sign_agreement", "invariance_p", "score", "kept", "reason"]
    return _table(pd.DataFrame(d["stability"]["features"])[cols].round(4))


def _setups_html(s: dict[str, Any]) -> str:
    table = pd.DataFrame(s["table"])
    cols = [c for c in ("setup", "accuracy", "auc", "ic", "r2_oos", "qlike", "sharpe_ls", "dm_ret_p",
                        "dm_dir_p", "dm_var_p", "n_fits", "n_refits", "fit_seconds", "mean_features")
            if c in table]
    fits = pd.DataFrame(s["fits"])
    fits = fits[fits["reason"].str.startswith("drift")] if not fits.empty else fits
    log = ("<p>no drift-triggered refit</p>" if fits.empty else _table(
        fits.assign(kept=fits["kept"].map(", ".join),
                    drifted_features=fits["drifted_features"].map(lambda f: ", ".join(f[:8])))
        [["setup", "as_of", "first_prediction", "reason", "n_train", "seconds", "kept",
          "drifted_features"]].round(3)))
    return (_table(table[cols].round(4))
            + f"<p>DM p: one-sided Diebold-Mariano p-value (HAC, HLN) that the set-up's loss is lower "
              f"than {html.escape(str(s['baseline']))}'s (ret: squared error, dir: log loss, "
              "var: QLIKE). n_fits counts every fit, the first included.</p>"
            + "<h3>Drift-triggered refits</h3>" + log)


def drift_sections(drift_json: dict[str, Any], first_plot: bool) -> list[tuple[str, str]]:
    d = drift_json
    out = [("Drift timeline", _fig(timeline_figure(d), first_plot, 520) + _timeline_table(d)),
           ("Year-on-year feature drift (KS, PSI, MMD)", _batch_table(d)),
           ("Feature stability across years", _fig(stability_figure(d), False, 520)
            + _fig(sign_agreement_figure(d), False, 380) + _stability_table(d))]
    if d.get("setups"):
        out.append(("Retraining policies", _setups_html(d["setups"])))
    return out


def write_drift_report(run_dir: str | Path) -> Path:
    """report.html from drift.json alone (a run folder written by `tidewise drift`)."""
    run_dir = Path(run_dir)
    d = json.loads((run_dir / "drift.json").read_text())
    body = "\n".join(f"<h2>{html.escape(t)}</h2>\n{c}" for t, c in drift_sections(d, first_plot=True))
    notes = "".join(f"<p><em>note: {html.escape(n)}</em></p>" for n in d.get("notes") or [])
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>tidewise drift report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}}
table.tbl{{border-collapse:collapse;font-size:12px}} .tbl td,.tbl th{{padding:3px 6px;border-bottom:1px solid #ddd;text-align:right}}</style>
</head><body><h1>tidewise drift: {html.escape(str(d.get('data')))}</h1>
<p>detector {html.escape(str(d.get('detector')))}, horizon {d.get('horizon')} day(s).</p>{notes}
{body}
</body></html>"""
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
