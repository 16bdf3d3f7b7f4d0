"""Imports follow the data flow: models → distill → export → runtime, never backwards."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["models", "distill", "export", "runtime"]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_no_later_stage(stage):
    later = STAGES[STAGES.index(stage) + 1 :]
    for path in (ROOT / stage).rglob("*.py"):
        for name in imported_modules(path):
            parts = name.split(".")
            assert not (parts[0] == "pocketgan" and len(parts) > 1 and parts[1] in later), f"{path}: imports {name}"
            assert parts[0] not in STAGES, f"{path}: import {name} as pocketgan.{name}"


def test_runtime_imports_no_torch_and_only_the_manifest_types():
    allowed = {"pocketgan.manifest", "pocketgan.errors", "pocketgan.runtime"}
    for path in (ROOT / "runtime").rglob("*.py"):
        for name in imported_modules(path):
            assert name.split(".")[0] != "torch", f"{path}: imports {name}"
            if name.startswith("pocketgan"):
                assert name == "pocketgan" or any(name.startswith(a) for a in allowed), f"{path}: imports {name}"


def test_the_contract_modules_use_the_standard_library_only():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for rel in ("pocketgan/manifest.py", "pocketgan/errors.py", "pocketgan/__init__.py"):
        for name in imported_modules(ROOT / rel):
            assert name.split(".")[0] in stdlib or name in ("pocketgan.errors",), f"{rel}: imports {name}"


def test_installed_package_maps_the_stage_folders():
    import pocketgan.distill
    import pocketgan.models

    assert Path(pocketgan.models.__file__).parent == ROOT / "models"
    assert Path(pocketgan.distill.__file__).parent == ROOT / "distill"


def test_every_package_folder_is_listed_for_setuptools():
    """A non-editable install ships exactly the listed packages: a new sub-package must be added."""
    import tomllib

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping, listed = tool["package-dir"], set(tool["packages"])
    found = set()
    for top, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((top, *rel)))
    assert found == listed
