"""core/ is layered as docs/ARCHITECTURE.md draws it: each package imports only from itself and
from the packages below it, and nothing in core imports streamlit or ui (checked on the source,
function-level imports included, so a lazy import cannot hide a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "core"

# Lower numbers are lower layers; packages on one layer never import each other.
LAYER = {
    "paths": 0,
    "files": 0,
    "devices": 0,
    "audio": 1,
    "data": 2,
    "models": 3,
    "training": 4,
    "inference": 5,
    "music": 5,
    "tensors": 5,
    "lessons": 6,
    "jobs": 7,
    "viz": 8,
}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            if node.module == "core":  # from core import paths
                modules.update(f"core.{alias.name}" for alias in node.names)
    return modules


def package_of(path: Path) -> str:
    return path.relative_to(CORE).parts[0].removesuffix(".py")


# core/train.py is the command line (`python -m core.train`), the one module that sits above
# every package it drives.
CORE_FILES = sorted(
    p
    for p in CORE.rglob("*.py")
    if (p.name != "__init__.py" or p.parent != CORE) and p.relative_to(CORE) != Path("train.py")
)


def test_every_core_package_has_a_layer():
    assert {package_of(p) for p in CORE_FILES} == set(LAYER)


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_imports_point_down_the_layers(path):
    own = package_of(path)
    for module in imported_modules(path):
        top = module.split(".")[0]
        assert top not in {"streamlit", "ui", "pages"}, f"{module} imported by core"
        if top != "core" or module == "core":
            continue
        target = module.split(".")[1]
        if target == own:
            continue
        assert LAYER[target] < LAYER[own], (
            f"core/{path.relative_to(CORE)} ({own}, layer {LAYER[own]}) imports {module} "
            f"(layer {LAYER[target]})"
        )
