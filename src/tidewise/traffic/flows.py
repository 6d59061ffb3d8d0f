"""Flow tables: nfstream features from the lab's pcaps, joined to the generator's ground truth.

One row per bidirectional flow. Three kinds of columns:
- features: nfstream's statistical analysis (sizes, inter-arrival times, TCP flags, durations,
  packet/byte counts per direction), the transport protocol number, and the first N packets'
  sizes, directions and inter-arrival times (nfstream's SPLT analysis) as splt_ps_i/splt_dir_i/splt_piat_i;
- meta (never features): addresses, ports, first-seen time, used only to join labels and order time;
- labels: app, period, environment, drifted (the app differs from its period-0 variant), held_out.

Shape legend: N flows, T early packets (SPLT length).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

SPLT_N = 16
META_COLUMNS = ["src_ip", "src_port", "dst_ip", "dst_port", "first_seen_ms"]
LABEL_COLUMNS = ["app", "period", "environment", "drifted", "held_out"]
# nfstream columns that are identities, absolute times or constants: never features.
_NOT_FEATURES = {"id", "expiration_id", "src_ip", "src_mac", "src_oui", "src_port", "dst_ip", "dst_mac",
                 "dst_oui", "dst_port", "ip_version", "vlan_id", "tunnel_id", "bidirectional_first_seen_ms",
                 "bidirectional_last_seen_ms", "src2dst_first_seen_ms", "src2dst_last_seen_ms",
                 "dst2src_first_seen_ms", "dst2src_last_seen_ms", "application_name",
                 "application_category_name", "application_is_guessed", "application_confidence",
                 "requested_server_name", "client_fingerprint", "server_fingerprint", "user_agent",
                 "content_type", "splt_direction", "splt_ps", "splt_piat_ms"}
# Anything whose name contains one of these is an identity and must never be a feature.
FORBIDDEN_FEATURE_TOKENS = ("ip", "port", "mac", "oui", "server_name", "fingerprint", "application",
                            "user_agent", "first_seen", "last_seen")
SPLT_PREFIXES = ("splt_ps_", "splt_dir_", "splt_piat_")


def splt_columns(n: int = SPLT_N) -> list[str]:
    return [f"{p}{i}" for p in SPLT_PREFIXES for i in range(n)]


def feature_columns(df: pd.DataFrame) -> list[str]:
    """Statistical feature columns (not the per-packet sequence) of a flow table."""
    return [c for c in df.columns if c not in META_COLUMNS and c not in LABEL_COLUMNS
            and not c.startswith(SPLT_PREFIXES)]


def sequence_array(df: pd.DataFrame, n: int = SPLT_N) -> np.ndarray:
    """Early-packet sequences, (N, T, 3): size, direction (+1 client->server, -1 back), iat; 0 = padding."""
    ps = df[[f"splt_ps_{i}" for i in range(n)]].to_numpy(np.float32)
    dr = df[[f"splt_dir_{i}" for i in range(n)]].to_numpy(np.float32)
    iat = df[[f"splt_piat_{i}" for i in range(n)]].to_numpy(np.float32)
    return np.stack([ps, dr, iat], axis=-1)


def _expand_splt(raw: pd.DataFrame, n: int) -> pd.DataFrame:
    def parse(col: str) -> np.ndarray:
        vals = [json.loads(v) if isinstance(v, str) else list(v) for v in raw[col]]
        return np.array([(v + [-1] * n)[:n] for v in vals], dtype=np.float64)

    ps, dr, iat = parse("splt_ps"), parse("splt_direction"), parse("splt_piat_ms")
    pad = dr < 0  # nfstream pads missing packets with -1
    out = {}
    for i in range(n):
        out[f"splt_ps_{i}"] = np.where(pad[:, i], 0, ps[:, i]).astype(np.float32)
        out[f"splt_dir_{i}"] = np.where(pad[:, i], 0, np.where(dr[:, i] == 0, 1, -1)).astype(np.int8)
        out[f"splt_piat_{i}"] = np.where(pad[:, i], 0, iat[:, i]).astype(np.float32)
    return pd.DataFrame(out, index=raw.index)


def pcap_to_flows(pcap: str | Path, splt: int = SPLT_N) -> pd.DataFrame:
    """nfstream over one pcap; returns features + meta columns (no labels). Needs the `traffic` extra."""
    try:
        from nfstream import NFStreamer
    except ImportError as e:  # optional dependency, imported lazily
        raise ImportError("flow extraction needs nfstream: pip install 'tidewise[traffic]'") from e
    raw = NFStreamer(source=str(pcap), statistical_analysis=True, splt_analysis=splt, n_dissections=0,
                     accounting_mode=1, idle_timeout=60, active_timeout=600).to_pandas()
    if raw.empty:
        return pd.DataFrame()
    feats = [c for c in raw.columns if c not in _NOT_FEATURES]
    out = raw[feats].astype(np.float32)
    meta = raw[["src_ip", "src_port", "dst_ip", "dst_port"]].copy()
    meta["first_seen_ms"] = raw["bidirectional_first_seen_ms"].astype(np.int64)
    return pd.concat([meta, out, _expand_splt(raw, splt)], axis=1)


def label_flows(flows: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """Join ground truth: app from the server port, (period, environment) from the segment's time span."""
    ports = {int(k): v for k, v in manifest["ports"].items()}
    drifted = {p["period"]: set(p["drifted_apps"]) for p in manifest["periods"]}
    segs = sorted(manifest["segments"], key=lambda s: s["t_start"])
    starts = np.array([s["t_start"] * 1000 for s in segs])
    ends = np.array([s["t_end"] * 1000 for s in segs])
    t = flows["first_seen_ms"].to_numpy()
    idx = np.searchsorted(starts, t, side="right") - 1
    ok = (idx >= 0) & (t <= ends[np.clip(idx, 0, None)]) & (flows["src_ip"] == manifest["client_ip"]).to_numpy()
    app = flows["dst_port"].map(ports)
    ok &= app.notna().to_numpy()
    df = flows.loc[ok].copy()
    idx = idx[ok]
    df["app"] = app[ok].astype(str)
    df["period"] = np.array([segs[i]["period"] for i in idx], dtype=np.int16)
    df["environment"] = [segs[i]["environment"] for i in idx]
    df["drifted"] = [a in drifted.get(p, set()) for a, p in zip(df["app"], df["period"])]
    df["held_out"] = df["app"] == manifest["held_out"]
    return df


def build_flow_table(lab_dir: str | Path, splt: int = SPLT_N) -> pd.DataFrame:
    """All periods of a lab run as one labelled flow table, sorted by first-seen time."""
    lab_dir = Path(lab_dir)
    manifest = json.loads((lab_dir / "lab_manifest.json").read_text())
    parts = [pcap_to_flows(lab_dir / p["pcap"], splt) for p in manifest["periods"]]
    flows = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    df = label_flows(flows, manifest)
    return df.sort_values("first_seen_ms", kind="stable").reset_index(drop=True)


def check_no_identity_features(columns: list[str]) -> None:
    bad = [c for c in columns if any(tok in c for tok in FORBIDDEN_FEATURE_TOKENS)]
    if bad:
        raise ValueError(f"identity columns leaked into the features: {bad}")


# ---------------------------------------------------------------- the embedded corpus
CORPUS_DIR = Path(__file__).parent / "corpus"


def load_flow_table(path: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """(flow table, manifest). Default: the embedded corpus. `path` is a Parquet file or a directory
    holding flows.parquet and MANIFEST.json (or lab_manifest.json)."""
    p = Path(path) if path is not None else CORPUS_DIR
    if p.is_dir():
        table = p / "flows.parquet"
        man = p / "MANIFEST.json" if (p / "MANIFEST.json").exists() else p / "lab_manifest.json"
    else:
        table = p
        man = p.parent / "MANIFEST.json" if (p.parent / "MANIFEST.json").exists() else p.parent / "lab_manifest.json"
    df = pd.read_parquet(table)
    manifest = json.loads(man.read_text())
    return df.sort_values("first_seen_ms", kind="stable").reset_index(drop=True), manifest
