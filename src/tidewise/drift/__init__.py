"""tidewise.drift: domain-neutral drift detection and robust-feature selection.

Nothing here imports stock- or traffic-specific code (tests/test_drift_isolation.py enforces it).
The torch-based invariance penalties load lazily: ``from tidewise.drift import vrex_penalty``
imports torch, ``import tidewise.drift`` does not.
"""
from __future__ import annotations

from typing import Any

from tidewise.drift.batch import BatchResult, classifier_test, ks_test, mmd_test, psi
from tidewise.drift.detectors import (
    ADWINDetector,
    DDMDetector,
    KSWINDetector,
    MultiFeatureDetector,
    PageHinkleyDetector,
    StreamDetector,
)
from tidewise.drift.registry import DETECTORS, create_detector, run_batch_test
from tidewise.drift.robust import RobustFeatureSelector, make_time_environments

_LAZY = {"vrex_penalty", "irm_penalty", "per_env_losses"}

__all__ = [
    "ADWINDetector", "BatchResult", "DDMDetector", "DETECTORS", "KSWINDetector",
    "MultiFeatureDetector", "PageHinkleyDetector", "RobustFeatureSelector", "StreamDetector",
    "classifier_test", "create_detector", "irm_penalty", "ks_test", "make_time_environments",
    "mmd_test", "per_env_losses", "psi", "run_batch_test", "vrex_penalty",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from tidewise.drift import invariance

        return getattr(invariance, name)
    raise AttributeError(f"module 'tidewise.drift' has no attribute {name!r}")
