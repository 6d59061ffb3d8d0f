"""tidewise.drift must stay domain-neutral: it imports nothing stock- or traffic-specific.

Two checks: a static one (every import statement in every drift module, parsed with ast) and a
dynamic one (import the package in a fresh interpreter and look at sys.modules).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tidewise.drift

DRIFT_DIR = Path(tidewise.drift.__file__).parent
ALLOWED_THIRD_PARTY = {"numpy", "pandas", "scipy", "sklearn", "lightgbm", "river"}
TORCH_ONLY_IN = {"invariance.py"}
FORBIDDEN = ("tidewise.data", "tidewise.features", "tidewise.models", "tidewise.evaluation",
             "tidewise.training", "tidewise.traffic", "tidewise.report", "tidewise.cli")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against tidewise.drift
                found.add("tidewise.drift" + (f".{node.module}" if node.module else ""))
            elif node.module:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names if node.module == "tidewise")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ) and node.args and isinstance(node.args[0], ast.Constant):
            found.add(str(node.args[0].value))
    return found


def test_drift_modules_import_only_allowed_packages():
    files = sorted(DRIFT_DIR.glob("*.py"))
    assert {"detectors.py", "batch.py", "robust.py", "invariance.py", "registry.py"} <= {f.name for f in files}
    for path in files:
        for mod in imported_modules(path):
            top = mod.split(".")[0]
            if top == "tidewise":
                assert mod == "tidewise.drift" or mod.startswith("tidewise.drift."), f"{path.name}: {mod}"
            elif top == "torch":
                assert path.name in TORCH_ONLY_IN, f"{path.name} imports torch"
            elif top != "__future__" and top not in sys.stdlib_module_names:
                assert top in ALLOWED_THIRD_PARTY, f"{path.name} imports {mod}"


def test_the_static_check_would_catch_a_stock_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from tidewise.models.base import FoldData\nfrom tidewise import features\n")
    assert {"tidewise.models.base", "tidewise.features"} <= imported_modules(bad)


def test_importing_drift_loads_no_stock_code_and_no_torch():
    code = (
        "import sys, tidewise.drift, tidewise.drift.registry, tidewise.drift.robust\n"
        "from tidewise.drift import DETECTORS, create_detector\n"
        "create_detector('adwin').update(0.0)\n"
        f"bad = [m for m in sys.modules if m.startswith({FORBIDDEN!r})]\n"
        "assert not bad, bad\n"
        "assert 'torch' not in sys.modules, 'torch loaded eagerly'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_penalties_load_lazily_from_the_package():
    from tidewise.drift import invariance

    assert tidewise.drift.vrex_penalty is invariance.vrex_penalty
    assert tidewise.drift.irm_penalty is invariance.irm_penalty
