"""The one registry of drift detectors: every streaming detector and every batch test, by name.

``DETECTORS[name]`` is a :class:`DetectorEntry`; calling it calls its factory, so
``DETECTORS["adwin"](delta=0.01)`` builds a detector and ``DETECTORS["ks"](ref, cur)`` runs a test.
``kind`` says which: "stream" (an object with update / drift_detected / reset / clone) or "batch"
(a function ``(ref, cur, **kw) -> BatchResult``). ``input`` says what a stream detector eats:
"real" (floats), "binary" (0/1 error bits) or "vector" (one value per feature).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from tidewise.drift.batch import BatchResult, classifier_test, ks_test, mmd_test, psi
from tidewise.drift.detectors import (
    ADWINDetector,
    DDMDetector,
    KSWINDetector,
    MultiFeatureDetector,
    PageHinkleyDetector,
)


@dataclass(frozen=True)
class DetectorEntry:
    name: str
    kind: str  # "stream" | "batch"
    input: str  # "real" | "binary" | "vector" | "frames"
    factory: Callable[..., Any]
    summary: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.factory(*args, **kwargs)


_ENTRIES = (
    DetectorEntry("adwin", "stream", "real", ADWINDetector, "ADWIN adaptive window, mean change"),
    DetectorEntry("kswin", "stream", "real", KSWINDetector, "KS test on a sliding window"),
    DetectorEntry("page_hinkley", "stream", "real", PageHinkleyDetector, "Page-Hinkley CUSUM, mean change"),
    DetectorEntry("ddm", "stream", "binary", DDMDetector, "DDM, rise of a 0/1 error rate"),
    DetectorEntry("multi", "stream", "vector", MultiFeatureDetector, "one detector per feature"),
    DetectorEntry("ks", "batch", "frames", ks_test, "KS per feature, Bonferroni"),
    DetectorEntry("mmd", "batch", "frames", mmd_test, "RBF MMD^2, permutation p-value"),
    DetectorEntry("classifier", "batch", "frames", classifier_test, "classifier two-sample test (AUC)"),
    DetectorEntry("psi", "batch", "frames", psi, "Population Stability Index per feature"),
)

DETECTORS: dict[str, DetectorEntry] = {e.name: e for e in _ENTRIES}


def _entry(name: str) -> DetectorEntry:
    try:
        return DETECTORS[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}") from None


def create_detector(name: str, **kwargs: Any) -> Any:
    """Build a streaming detector by name (``kind == "stream"``)."""
    entry = _entry(name)
    if entry.kind != "stream":
        raise TypeError(f"{name!r} is a batch test; call run_batch_test({name!r}, ref, cur)")
    return entry.factory(**kwargs)


def run_batch_test(name: str, ref: Any, cur: Any, **kwargs: Any) -> BatchResult:
    """Run a batch two-sample test by name (``kind == "batch"``)."""
    entry = _entry(name)
    if entry.kind != "batch":
        raise TypeError(f"{name!r} is a streaming detector; use create_detector({name!r})")
    return entry.factory(ref, cur, **kwargs)


def names(kind: str | None = None) -> list[str]:
    """Registered names, optionally only one kind ("stream" or "batch")."""
    return [n for n, e in DETECTORS.items() if kind is None or e.kind == kind]
