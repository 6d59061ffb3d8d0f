"""Streaming drift detectors with one small, river-shaped API.

Every detector here follows the same contract (the shared test in tests/test_drift_detectors.py
runs every registered detector through it):

- ``update(x) -> self``       feed one observation (a finite float, or a 0/1 error bit for DDM).
- ``drift_detected``          read-only; True only on the update where drift was flagged.
- ``reset()``                 forget everything seen, keep the configuration.
- ``clone()``                 a fresh, unfitted detector built from the constructor's arguments.
- ``n_seen``                  number of updates since construction or the last ``reset()``.
- ``detections``              0-based positions (in update order) where drift fired.

The statistics are river's (0.26): we wrap rather than reimplement them, because river's versions
are tested and maintained. The wrappers add the bookkeeping above, input validation (river silently
propagates NaN into its running means) and accurate documentation of river's semantics.

Nothing here knows about stocks or traffic; the caller decides what the stream is (model residuals,
absolute errors, a single feature, 0/1 classification mistakes).
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np


class StreamDetector:
    """Base class: wraps one river drift detector and keeps the tidewise bookkeeping.

    Subclasses set ``name`` and implement ``_make()`` (build the river object from ``self.params``).
    """

    name: ClassVar[str] = "base"

    def __init__(self, **params: Any) -> None:
        self._params: dict[str, Any] = dict(params)
        self.reset()

    # -- the API ----------------------------------------------------------------------------
    def update(self, x: float) -> "StreamDetector":
        value = self._check(x)
        self._river.update(value)
        self._drift = bool(self._river.drift_detected)
        if self._drift:
            self.detections.append(self.n_seen)
        self.n_seen += 1
        return self

    @property
    def drift_detected(self) -> bool:
        return self._drift

    @property
    def params(self) -> dict[str, Any]:
        """The constructor's arguments (a copy); ``clone()`` replays them."""
        return dict(self._params)

    def reset(self) -> "StreamDetector":
        self._river = self._make()
        self._drift = False
        self.n_seen = 0
        self.detections: list[int] = []
        return self

    def clone(self) -> "StreamDetector":
        return type(self)(**self._params)

    def update_many(self, xs: Iterable[float]) -> "StreamDetector":
        """Convenience: ``update`` every value in order."""
        for x in xs:
            self.update(x)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"

    # -- internals --------------------------------------------------------------------------
    def _make(self) -> Any:
        raise NotImplementedError

    def _check(self, x: float) -> float:
        value = float(x)
        if not math.isfinite(value):
            raise ValueError(f"{self.name}: got non-finite value {x!r}; filter NaN/inf before update()")
        return value


class ADWINDetector(StreamDetector):
    """ADWIN (Bifet & Gavalda 2007) on a real-valued stream, via ``river.drift.ADWIN``.

    ADWIN keeps a variable-length window of recent values (compressed into exponential buckets,
    at most ``max_buckets`` per size) and flags drift when two sub-windows have means that differ by
    more than a Hoeffding-style bound at confidence ``delta``. Its semantics in river 0.26:

    - It only *checks* for a change every ``clock`` updates (default 32), so a detection can only
      fire on an update whose 1-based count is a multiple of ``clock``; delay is therefore at least
      the statistical delay rounded up to the next clock tick. ``clock=1`` checks every item.
    - No check happens before ``grace_period`` items, and sub-windows shorter than
      ``min_window_length`` are never compared.
    - Smaller ``delta`` means fewer false alarms and longer delays. It detects changes in the mean
      in either direction.
    - After a detection, river's wrapper resets the whole detector on the next update, so the
      statistics restart from an empty window.
    """

    name = "adwin"

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        super().__init__(
            delta=delta,
            clock=clock,
            max_buckets=max_buckets,
            min_window_length=min_window_length,
            grace_period=grace_period,
        )

    def _make(self) -> Any:
        from river.drift import ADWIN

        return ADWIN(**self._params)


class KSWINDetector(StreamDetector):
    """KSWIN (Raab et al. 2020), a Kolmogorov-Smirnov test on a sliding window, via ``river.drift.KSWIN``.

    River keeps a sliding window of the last ``window_size`` values. Once it is full, every update
    compares the newest ``stat_size`` values against ``stat_size`` values drawn at random (without
    replacement, from an RNG seeded with ``seed``) from the older ``window_size - stat_size`` values,
    with ``scipy.stats.ks_2samp``. Drift fires when the p-value is <= ``alpha`` *and* the KS
    statistic exceeds 0.1. Because the test is repeated on every update, ``alpha`` is a per-test
    level, not a false-alarm rate for the stream: river recommends ``alpha`` below 0.01.
    It reacts to any change in distribution (mean, scale, shape). Nothing is tested until the first
    ``window_size`` values have arrived, and after a detection the detector resets on the next
    update (empty window, RNG reseeded), so it needs ``window_size`` fresh values before it can fire
    again. ``seed`` defaults to 0 here (river's default is None) so equal streams give equal
    detections.
    """

    name = "kswin"

    def __init__(
        self, alpha: float = 0.005, window_size: int = 100, stat_size: int = 30, seed: int | None = 0
    ) -> None:
        super().__init__(alpha=alpha, window_size=window_size, stat_size=stat_size, seed=seed)

    def _make(self) -> Any:
        from river.drift import KSWIN

        return KSWIN(**self._params)


class PageHinkleyDetector(StreamDetector):
    """The Page-Hinkley test (a CUSUM chart on a fading mean), via ``river.drift.PageHinkley``.

    River accumulates ``m_t = alpha * m_{t-1} + (x_t - mean_t) - delta`` for increases (and the
    mirror-image sum with ``+ delta`` for decreases), where ``mean_t`` is the running mean of all
    values since the last reset and ``alpha`` is a forgetting factor (default 0.9999, nearly no
    forgetting). Drift fires when the sum has risen more than ``threshold`` (lambda) above its
    running minimum (or fallen more than ``threshold`` below its maximum, for decreases).
    ``delta`` is the magnitude of change tolerated per step; no test happens before
    ``min_instances`` values. ``mode`` chooses the direction: "up" (increases only), "down", or
    "both"; river 0.26's default is "both" (older river versions only watched increases), and we
    keep river's default. ``threshold`` is in the units of x times steps, so scale the stream (or
    the threshold) to its noise level. After a detection the detector resets on the next update.
    """

    name = "page_hinkley"

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 0.9999,
        mode: str = "both",
    ) -> None:
        super().__init__(
            min_instances=min_instances, delta=delta, threshold=threshold, alpha=alpha, mode=mode
        )

    def _make(self) -> Any:
        from river.drift import PageHinkley

        return PageHinkley(**self._params)


class DDMDetector(StreamDetector):
    """DDM, the Drift Detection Method (Gama et al. 2004), via ``river.drift.binary.DDM``.

    Input is a stream of bits: 1 = the model made a mistake, 0 = it was right. River tracks the
    running error rate p_i and its binomial standard deviation s_i = sqrt(p_i (1 - p_i) / i), and
    remembers (p_min, s_min) where p_i + s_i was smallest. After more than ``warm_start`` bits it
    enters the warning zone when p_i + s_i > p_min + ``warning_threshold`` * s_min (default 2,
    about 95 %) and flags drift when p_i + s_i > p_min + ``drift_threshold`` * s_min (default 3,
    about 99 %). It only detects *increases* of the error rate. After a detection it resets on
    the next update. ``warning_detected`` exposes river's warning flag for the current update.
    """

    name = "ddm"

    def __init__(
        self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0
    ) -> None:
        super().__init__(
            warm_start=warm_start,
            warning_threshold=warning_threshold,
            drift_threshold=drift_threshold,
        )

    @property
    def warning_detected(self) -> bool:
        return bool(self._river.warning_detected)

    def _make(self) -> Any:
        from river.drift.binary import DDM

        return DDM(**self._params)

    def _check(self, x: float) -> float:
        value = super()._check(x)
        if value not in (0.0, 1.0):
            raise ValueError(f"ddm: expects 0/1 error bits (1 = mistake), got {x!r}")
        return value


STREAM_DETECTORS: dict[str, type[StreamDetector]] = {
    cls.name: cls for cls in (ADWINDetector, KSWINDetector, PageHinkleyDetector, DDMDetector)
}


class MultiFeatureDetector:
    """One streaming detector per feature, on a stream of vectors; reports which features fired.

    ``update(x)`` accepts a mapping or pandas Series keyed by feature name, or a sequence / 1-D
    array in the order of ``features``. Each feature gets its own clone of ``detector`` (a name in
    ``STREAM_DETECTORS`` plus ``detector_params``). ``drift_detected`` is True when at least one
    feature fired on this update; ``drifted_features`` names them; ``detections`` lists the update
    positions where any feature fired; ``feature_detections`` maps each feature to its own list.
    No multiple-testing correction is applied: with F features the stream-level false-alarm rate is
    up to F times the per-feature one, so tighten the detector's threshold accordingly.
    """

    name = "multi"

    def __init__(
        self,
        features: Sequence[str],
        detector: str = "adwin",
        detector_params: Mapping[str, Any] | None = None,
    ) -> None:
        if detector not in STREAM_DETECTORS:
            raise KeyError(f"unknown detector {detector!r}; known: {', '.join(STREAM_DETECTORS)}")
        if len(features) == 0 or len(set(features)) != len(features):
            raise ValueError("features must be a non-empty list of distinct names")
        self._params: dict[str, Any] = {
            "features": list(features),
            "detector": detector,
            "detector_params": dict(detector_params or {}),
        }
        self.reset()

    @property
    def params(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
                for k, v in self._params.items()}

    @property
    def features(self) -> list[str]:
        return list(self._params["features"])

    @property
    def drift_detected(self) -> bool:
        return bool(self.drifted_features)

    def reset(self) -> "MultiFeatureDetector":
        proto = STREAM_DETECTORS[self._params["detector"]](**self._params["detector_params"])
        self._detectors = {f: proto.clone() for f in self._params["features"]}
        self.drifted_features: list[str] = []
        self.n_seen = 0
        self.detections: list[int] = []
        self.feature_detections: dict[str, list[int]] = {f: [] for f in self._params["features"]}
        return self

    def clone(self) -> "MultiFeatureDetector":
        return MultiFeatureDetector(**self.params)

    def update(self, x: Mapping[str, float] | Sequence[float] | np.ndarray) -> "MultiFeatureDetector":
        values = self._as_dict(x)
        fired = []
        for f, det in self._detectors.items():
            if det.update(values[f]).drift_detected:
                fired.append(f)
                self.feature_detections[f].append(self.n_seen)
        self.drifted_features = fired
        if fired:
            self.detections.append(self.n_seen)
        self.n_seen += 1
        return self

    def _as_dict(self, x: Any) -> Mapping[str, float]:
        if isinstance(x, Mapping) or hasattr(x, "index") and hasattr(x, "to_dict"):
            d = dict(x)
            missing = [f for f in self._detectors if f not in d]
            if missing:
                raise KeyError(f"update() is missing features {missing}")
            return d
        arr = np.asarray(x, dtype=float).ravel()
        if arr.shape[0] != len(self._detectors):
            raise ValueError(f"expected {len(self._detectors)} values, got {arr.shape[0]}")
        return dict(zip(self._detectors, arr.tolist()))

    def __repr__(self) -> str:
        p = self._params
        return f"MultiFeatureDetector(features={p['features']!r}, detector={p['detector']!r})"
