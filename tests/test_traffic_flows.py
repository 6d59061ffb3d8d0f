"""Flow table: the embedded corpus's schema and labels, the label join, no identity features."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tidewise.traffic import apps as A
from tidewise.traffic.flows import (CORPUS_DIR, LABEL_COLUMNS, META_COLUMNS, SPLT_N, _expand_splt,
                                    check_no_identity_features, feature_columns, label_flows,
                                    load_flow_table, sequence_array, splt_columns)


@pytest.fixture(scope="module")
def corpus():
    return load_flow_table()


def test_corpus_schema_and_size(corpus):
    df, manifest = corpus
    assert (CORPUS_DIR / "flows.parquet").stat().st_size < 8 * 2**20
    for col in META_COLUMNS + LABEL_COLUMNS + splt_columns():
        assert col in df.columns, col
    feats = feature_columns(df)
    assert len(feats) >= 40
    assert all(pd.api.types.is_numeric_dtype(df[c]) for c in feats)
    assert np.isfinite(df[feats].to_numpy(float)).all()
    assert df["first_seen_ms"].is_monotonic_increasing
    assert sorted(df["period"].unique()) == [0, 1, 2]
    assert set(df["app"].unique()) == set(A.APPS)
    counts = df.groupby(["period", "app"]).size()
    assert counts.min() >= 100, counts.to_dict()
    assert manifest["held_out"] == A.HELD_OUT
    for p in (0, 1, 2):
        assert df.loc[df["period"] == p, "environment"].nunique() >= 3


def test_no_identity_features(corpus):
    df, _ = corpus
    feats = feature_columns(df)
    check_no_identity_features(feats)
    for bad in ("src_ip", "dst_ip", "src_port", "dst_port", "first_seen_ms", "requested_server_name"):
        assert bad not in feats
    assert not any(c.startswith("splt_") for c in feats)
    with pytest.raises(ValueError):
        check_no_identity_features(feats + ["dst_port"])


def test_manifest_upgrades_match_labels(corpus):
    df, manifest = corpus
    periods = {p["period"]: p for p in manifest["periods"]}
    assert periods[0]["drifted_apps"] == []
    assert set(periods[1]["upgrades"]) <= set(periods[1]["drifted_apps"])
    assert len(periods[2]["drifted_apps"]) > len(periods[1]["drifted_apps"])
    for p, info in periods.items():
        sub = df[df["period"] == p]
        assert set(sub.loc[sub["drifted"], "app"]) == set(info["drifted_apps"])
    assert A.HELD_OUT not in periods[2]["drifted_apps"]
    assert (df["held_out"] == (df["app"] == A.HELD_OUT)).all()


def test_label_join_by_server_port_and_segment_time():
    manifest = {"ports": {str(k): v for k, v in A.port_to_app().items()}, "client_ip": "10.77.0.2",
                "held_out": "ftp",
                "periods": [{"period": 0, "drifted_apps": []}, {"period": 1, "drifted_apps": ["https"]}],
                "segments": [{"period": 0, "environment": "lan", "t_start": 10.0, "t_end": 20.0},
                             {"period": 1, "environment": "wan", "t_start": 30.0, "t_end": 40.0}]}
    flows = pd.DataFrame({
        "src_ip": ["10.77.0.2"] * 6, "dst_ip": ["10.77.0.1"] * 6,
        "src_port": [50000, 50001, 50002, 50003, 50004, 50005],
        "dst_port": [443, 443 + A.RELAY_OFFSET, A.FTP_PASV[0] + 3, 22, 443, 9999],
        "first_seen_ms": [15000, 35000, 31000, 25000, 12000, 16000]})
    out = label_flows(flows, manifest)
    # 25000 ms falls between segments and port 9999 belongs to no app: both dropped
    assert out["src_port"].tolist() == [50000, 50001, 50002, 50004]
    assert out["app"].tolist() == ["https", "https", "ftp", "https"]
    assert out["period"].tolist() == [0, 1, 1, 0]
    assert out["environment"].tolist() == ["lan", "wan", "wan", "lan"]
    assert out["drifted"].tolist() == [False, True, False, False]
    assert out["held_out"].tolist() == [False, False, True, False]


def test_splt_expansion_padding_and_direction():
    raw = pd.DataFrame({"splt_ps": [json.dumps([60, 1500, 52] + [-1] * (SPLT_N - 3))],
                        "splt_direction": [json.dumps([0, 1, 0] + [-1] * (SPLT_N - 3))],
                        "splt_piat_ms": [json.dumps([0, 2, 7] + [-1] * (SPLT_N - 3))]})
    seq = sequence_array(_expand_splt(raw, SPLT_N))
    assert seq.shape == (1, SPLT_N, 3)
    np.testing.assert_array_equal(seq[0, :4, 0], [60, 1500, 52, 0])
    np.testing.assert_array_equal(seq[0, :4, 1], [1, -1, 1, 0])
    np.testing.assert_array_equal(seq[0, :4, 2], [0, 2, 7, 0])


def test_variants_accumulate_upgrades():
    v0, v1, v2 = (A.variants_for(p) for p in range(3))
    assert v0 == A.BASE_VARIANT
    assert v1["https"]["tls"] == "1.3" and v1["https"]["http"] == "1.1"
    assert v2["https"] == {"tls": "1.3", "http": "2"}
    assert v2["postgres"]["ssl"] == "on" and v2["dns"]["transport"] == "tcp"
    assert v2["redis"] == v0["redis"]
