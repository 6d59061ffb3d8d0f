"""Traffic classifiers and per-flow detectors: skill on period 0, hand cases, save/load, the relay."""
from __future__ import annotations

import asyncio
import time

import numpy as np
import pandas as pd
import pytest

from tidewise.traffic.classify import SequenceClassifier, StatsClassifier
from tidewise.traffic.detect import ConformalCredibility, ContrastiveAEDetector, detection_prf
from tidewise.traffic.evaluate import aut, held_out_summary, temporal_split
from tidewise.traffic.flows import feature_columns, load_flow_table


@pytest.fixture(scope="module")
def period0():
    """Period 0 of the corpus, split by time; a fixed sample keeps the tests fast."""
    df, manifest = load_flow_table()
    split = temporal_split(df, 0.6, 0.15, manifest["held_out"])
    p0 = df[df["period"] == 0]
    tr = p0[split[p0.index] == "train"].sample(n=900, random_state=0).sort_values("first_seen_ms")
    te = p0[(split[p0.index] == "test") & ~p0["held_out"]]
    return tr, te, feature_columns(df)


def test_temporal_split_orders_time_and_excludes_held_out():
    df, manifest = load_flow_table()
    split = temporal_split(df, 0.6, 0.15, manifest["held_out"])
    t = df["first_seen_ms"]
    assert t[split == "train"].max() <= t[split == "cal"].min()
    assert t[split == "cal"].max() <= t[(split == "test")].min()
    assert (df.loc[split.isin(["train", "cal"]), "period"] == 0).all()
    assert (split[df["period"] > 0] == "test").all()
    assert not df.loc[split.isin(["train", "cal"]), "held_out"].any()
    assert (split == "excluded").sum() == (df["held_out"] & (split != "test")).sum() > 0
    shuffled = df.sample(frac=1.0, random_state=0)
    with pytest.raises(ValueError):
        temporal_split(shuffled, 0.6, 0.15, manifest["held_out"])


def test_lightgbm_beats_chance_on_period0(period0, tmp_path):
    tr, te, feats = period0
    clf = StatsClassifier(n_estimators=60).fit(tr[feats], tr["app"].to_numpy())
    acc = (clf.predict(te[feats]) == te["app"].to_numpy()).mean()
    majority = te["app"].value_counts(normalize=True).iloc[0]
    assert acc > max(0.7, 2 * majority), acc
    clf.save(tmp_path)
    again = StatsClassifier.load(tmp_path)
    np.testing.assert_allclose(again.predict_proba(te[feats]), clf.predict_proba(te[feats]), rtol=1e-6)
    with pytest.raises(ValueError):  # identity columns are refused
        StatsClassifier().fit(tr[feats].assign(dst_port=tr["dst_port"]), tr["app"].to_numpy())


def test_sequence_model_beats_chance_and_roundtrips(period0, tmp_path):
    import torch

    torch.set_num_threads(1)
    tr, te, _ = period0
    clf = SequenceClassifier(epochs=4, d_model=16).fit(tr, tr["app"].to_numpy())
    acc = (clf.predict(te) == te["app"].to_numpy()).mean()
    assert acc > 2 / len(clf.classes_), acc
    clf.save(tmp_path)
    np.testing.assert_allclose(SequenceClassifier.load(tmp_path).predict_proba(te), clf.predict_proba(te), atol=1e-6)
    torch.manual_seed(123)  # a different global RNG state must not change a seeded fit
    again = SequenceClassifier(epochs=4, d_model=16).fit(tr, tr["app"].to_numpy())
    np.testing.assert_allclose(again.predict_proba(te), clf.predict_proba(te), atol=1e-5)


def test_cae_separates_known_from_shifted_and_roundtrips(period0, tmp_path):
    import torch

    torch.set_num_threads(1)
    tr, te, feats = period0
    det = ContrastiveAEDetector(epochs=4).fit(tr[feats], tr["app"].to_numpy())
    s_in, _ = det.score(te[feats])
    shifted = te[feats] * 37.0 + 1000.0  # far outside every class
    s_out, _ = det.score(shifted)
    assert np.median(s_out) > np.median(s_in) + 3
    expl = det.explain(te[feats].head(3), top=2)
    assert len(expl) == 3 and all(len(e) == 2 and e[0][0] in feats for e in expl)
    det.save(tmp_path)
    np.testing.assert_allclose(ContrastiveAEDetector.load(tmp_path).score(te[feats])[0], s_in, rtol=1e-5)


def test_conformal_credibility_hand_case():
    # class 0 calibration nonconformities 0.1, 0.2, 0.3, 0.4 (p_true = 0.9 .. 0.6)
    cal = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.2, 0.8]])
    conf = ConformalCredibility(alpha=0.25).fit(cal, np.array([0, 0, 0, 0, 1]))
    test = np.array([[0.95, 0.05], [0.65, 0.35], [0.55, 0.45], [0.1, 0.9]])
    # a = 0.05 -> all 4 cal >= a -> 5/5; a = 0.35 -> 1 (0.4) -> 2/5; a = 0.45 -> 0 -> 1/5
    # class 1: cal a = 0.2; test a = 0.1 -> 1 >= -> 2/2
    np.testing.assert_allclose(conf.credibility(test), [1.0, 0.4, 0.2, 1.0])
    np.testing.assert_array_equal(conf.flag(test), [False, False, True, False])


def test_detection_prf_hand_case():
    flagged = np.array([1, 1, 1, 0, 0, 0, 1, 0], bool)
    positive = np.array([1, 1, 0, 1, 0, 0, 1, 1], bool)
    r = detection_prf(flagged, positive)
    assert (r["tp"], r["fp"], r["fn"]) == (3, 1, 2)
    assert r["precision"] == pytest.approx(0.75) and r["recall"] == pytest.approx(0.6)
    assert r["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert detection_prf(np.zeros(3, bool), np.zeros(3, bool))["f1"] == 0.0


def test_held_out_summary_and_aut():
    flagged = np.array([1, 0, 0, 1, 0], bool)
    held = np.array([1, 1, 1, 0, 0], bool)
    confident = np.array([1, 1, 0, 1, 1], bool)
    r = held_out_summary(flagged, held, confident)
    assert r["n"] == 3 and r["flag_rate"] == pytest.approx(1 / 3)
    assert r["confidently_misclassified"] == pytest.approx(1 / 3)  # flow 2: unflagged and confident
    assert held_out_summary(flagged, np.zeros(5, bool), confident)["flag_rate"] is None
    assert aut([1.0, 0.5, 0.5]) == pytest.approx((0.75 + 0.5) / 2)
    assert aut([0.8]) == pytest.approx(0.8)


def test_relay_keeps_bytes_in_order_and_adds_delay():
    from tidewise.traffic.relay import _handle

    async def main():
        async def echo(r, w):
            while data := await r.read(4096):
                w.write(data)
                await w.drain()
            w.close()

        srv = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        import random
        rng = random.Random(0)
        relay = await asyncio.start_server(
            lambda r, w: _handle(r, w, ("127.0.0.1", port), 0.03, 0.01, 100, rng), "127.0.0.1", 0)
        rport = relay.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", rport)
        payload = bytes(range(256)) * 20
        t0 = time.monotonic()
        w.write(payload)
        await w.drain()
        w.write_eof()
        got = b""
        while data := await r.read(65536):
            got += data
        elapsed = time.monotonic() - t0
        w.close()
        relay.close()
        srv.close()
        return payload, got, elapsed

    payload, got, elapsed = asyncio.run(main())
    assert got == payload
    assert elapsed >= 0.06  # two relay hops of >= 30 ms each


def test_window_tests_run_every_batch_test_including_psi():
    import numpy as np

    from tidewise.traffic.detect import window_tests

    rng = np.random.default_rng(0)
    ref = pd.DataFrame(rng.normal(size=(600, 3)), columns=list("abc"))
    stream = pd.DataFrame(rng.normal(size=(300, 3)), columns=list("abc"))
    stream.loc[150:, "b"] += 3.0  # the second window drifts in feature b
    for test in ("ks", "psi"):
        win = window_tests(ref, stream, 150, test)
        assert list(win["drifted"]) == [False, True], test
        assert "b" in win["features"].iloc[1]
