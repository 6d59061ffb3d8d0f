"""Streaming detectors: ground truth on streams with known change points, and the shared API contract."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tidewise.drift import DETECTORS, MultiFeatureDetector, create_detector
from tidewise.drift.registry import names, run_batch_test

CHANGE = 1000  # index of the first post-change value
SEEDS = range(10)


def gaussian_shift(seed: int, mu: float, n_after: int = 600, n_before: int = CHANGE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(0.0, 1.0, n_before), rng.normal(mu, 1.0, n_after)]


def error_jump(seed: int, p0: float, p1: float, n_after: int = 600) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.random(CHANGE) < p0, rng.random(n_after) < p1].astype(int)


def delays_and_false_alarms(name: str, kw: dict, streams: list[np.ndarray], change: int = CHANGE):
    delays, false_alarms = [], 0
    for x in streams:
        det = np.asarray(create_detector(name, **kw).update_many(x).detections, dtype=int)
        false_alarms += int((det < change).sum())
        after = det[det >= change]
        delays.append(int(after[0] - change) if len(after) else None)
    return delays, false_alarms


@pytest.mark.parametrize(
    "name, kw, max_delay",
    [
        ("adwin", {}, 100),  # default clock=32: checks only every 32 updates
        ("adwin", {"clock": 1}, 60),
        ("page_hinkley", {"mode": "up", "delta": 0.25, "threshold": 25.0}, 60),
        ("page_hinkley", {"mode": "both", "delta": 0.25, "threshold": 25.0}, 60),
    ],
)
def test_mean_shift_detected_quickly_without_false_alarms(name, kw, max_delay):
    streams = [gaussian_shift(s, mu=1.0) for s in SEEDS]
    delays, false_alarms = delays_and_false_alarms(name, kw, streams)
    assert false_alarms == 0
    assert all(d is not None and d <= max_delay for d in delays), delays


def test_kswin_detects_distribution_shift():
    # KSWIN runs a KS test on every update (slow): shorter streams, fewer seeds.
    streams = [gaussian_shift(s, mu=2.0, n_after=150, n_before=500) for s in range(3)]
    delays, false_alarms = delays_and_false_alarms("kswin", {"alpha": 1e-4}, streams, change=500)
    assert false_alarms == 0
    assert all(d is not None and d <= 60 for d in delays), delays


def test_kswin_detects_a_change_in_scale_not_only_in_mean():
    # the mean stays 0, the standard deviation goes 1 -> 4; KSWIN compares whole distributions
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = np.r_[rng.normal(0, 1, 500), rng.normal(0, 4, 150)]
        det = create_detector("kswin", alpha=1e-4, window_size=300, stat_size=100).update_many(x)
        assert det.detections and 500 <= det.detections[0] <= 600, det.detections


def test_page_hinkley_mode_up_ignores_decreases_but_both_catches_them():
    streams = [gaussian_shift(s, mu=-1.0) for s in range(5)]
    kw = {"delta": 0.25, "threshold": 25.0}
    up, fa_up = delays_and_false_alarms("page_hinkley", {**kw, "mode": "up"}, streams)
    both, fa_both = delays_and_false_alarms("page_hinkley", {**kw, "mode": "both"}, streams)
    assert up == [None] * 5 and fa_up == 0
    assert all(d is not None and d <= 80 for d in both) and fa_both == 0


def test_ddm_error_rate_jump():
    streams = [error_jump(s, 0.1, 0.4) for s in SEEDS]
    delays, false_alarms = delays_and_false_alarms("ddm", {"warm_start": 100}, streams)
    assert all(d is not None and d <= 150 for d in delays), delays
    # DDM's p_min is noisy early on: a few false alarms in 10 x 1000 stationary bits are known
    assert false_alarms <= 3


def test_adwin_fires_only_on_clock_ticks():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(mu, 1.0, 600) for mu in (0.0, 3.0, -3.0, 0.0)])
    det = create_detector("adwin", clock=16).update_many(x)
    assert len(det.detections) >= 3, det.detections
    # river resets the detector after each detection, so ticks are counted from the last reset
    starts = [0] + [d + 1 for d in det.detections[:-1]]
    assert all((d + 1 - s) % 16 == 0 for d, s in zip(det.detections, starts))


def test_drift_detected_is_true_only_on_the_flagged_update():
    det = create_detector("adwin", clock=1)
    flags = [det.update(v).drift_detected for v in gaussian_shift(0, 2.0)]
    assert [i for i, f in enumerate(flags) if f] == det.detections
    assert det.n_seen == len(flags)


def test_input_validation():
    with pytest.raises(ValueError):
        create_detector("adwin").update(float("nan"))
    with pytest.raises(ValueError):
        create_detector("ddm").update(0.5)
    with pytest.raises(TypeError):
        create_detector("ks")
    with pytest.raises(KeyError):
        create_detector("nope")


def test_multi_feature_detector_names_the_shifted_feature():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1600, 3))
    X[CHANGE:, 1] += 1.5
    det = MultiFeatureDetector(["a", "b", "c"], detector="adwin", detector_params={"clock": 8})
    for row in X:
        det.update(row)
    assert det.feature_detections["a"] == [] and det.feature_detections["c"] == []
    first = det.feature_detections["b"][0]
    assert CHANGE <= first <= CHANGE + 80
    assert det.detections == det.feature_detections["b"]
    # mappings and Series are accepted too, and name what fired on that update
    det2 = det.clone()
    fired = [det2.update(pd.Series(r, index=["a", "b", "c"])).drifted_features for r in X]
    assert fired[first] == ["b"] and det2.detections == det.detections


# -- the shared contract: every registered streaming detector -----------------------------------
def contract_stream(entry_input: str) -> list:
    if entry_input == "binary":
        return error_jump(0, 0.05, 0.6, n_after=300).tolist()[700:]
    if entry_input == "vector":
        rng = np.random.default_rng(0)
        X = rng.normal(size=(600, 2))
        X[300:, 0] += 3.0
        return list(X)
    return gaussian_shift(0, 3.0, n_after=300, n_before=300).tolist()


def contract_kwargs(name: str) -> dict:
    return {"features": ["x0", "x1"], "detector_params": {"clock": 4}} if name == "multi" else {}


@pytest.mark.parametrize("name", names("stream"))
def test_every_stream_detector_follows_the_api_contract(name):
    entry = DETECTORS[name]
    stream = contract_stream(entry.input)
    det = create_detector(name, **contract_kwargs(name))
    assert det.drift_detected is False and det.n_seen == 0 and det.detections == []

    flags = []
    for x in stream:
        assert det.update(x) is det  # update returns self
        flags.append(det.drift_detected)
    assert det.n_seen == len(stream)
    assert det.detections == [i for i, f in enumerate(flags) if f]
    assert det.detections, f"{name} missed an obvious change"
    with pytest.raises(AttributeError):
        det.drift_detected = True  # read-only

    fresh = det.clone()
    assert type(fresh) is type(det) and fresh is not det
    assert fresh.params == det.params
    assert fresh.n_seen == 0 and fresh.detections == [] and not fresh.drift_detected
    for x in stream:  # same stream -> same detections
        fresh.update(x)
    assert fresh.detections == det.detections

    assert det.reset() is det
    assert det.n_seen == 0 and det.detections == [] and not det.drift_detected
    for x in stream:  # reset really clears the statistics
        det.update(x)
    assert det.detections == fresh.detections


@pytest.mark.parametrize("name", names("batch"))
def test_every_batch_test_is_registered_and_runs(name):
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(rng.normal(size=(200, 2)), columns=["u", "v"])
    cur = ref.copy() + rng.normal(0, 0.01, size=ref.shape)
    cur["u"] += 3.0
    kw = {"n_permutations": 50} if name == "mmd" else {"cv": 3} if name == "classifier" else {}
    res = run_batch_test(name, ref, cur, **kw)
    assert res.drifted and res.drifted_features[0] == "u"
    assert res.test == name
    with pytest.raises(TypeError):
        run_batch_test("adwin", ref, cur)
