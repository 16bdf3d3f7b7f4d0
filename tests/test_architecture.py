"""Imports follow the data flow, enforced with import-linter contracts (``importlinter.toml``).

setuptools maps ``models/``, ``distill/``, ``export/`` and ``runtime/`` to ``pocketgan.*``; grimp
cannot follow that mapping in an editable install, so the contracts run on a mirror of the
installed layout (the same files, copied). A second run on a mirror with a deliberately bad
import proves the contracts are live.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "importlinter.toml"
LINT = Path(sys.executable).with_name("lint-imports")


def mirror(dest: Path) -> Path:
    """Copy the sources into ``dest/pocketgan/...`` as a non-editable install lays them out."""
    import tomllib

    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package, folder in sorted(mapping.items(), key=lambda item: item[0].count(".")):
        shutil.copytree(ROOT / folder, dest / package.replace(".", "/"), ignore=ignore, dirs_exist_ok=True)
    return dest


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), str(CONFIG), "--no-cache"], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    if not LINT.exists():
        pytest.fail(f"{LINT} is missing: install pocketgan[dev] (import-linter)")
    return mirror(tmp_path_factory.mktemp("layers"))


def test_the_import_contracts_hold(tree):
    result = lint(tree)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "5 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("models/_bad.py", "from pocketgan import pipeline\n", "Layers"),
        ("distill/_bad.py", "from .. import cli\n", "Layers"),  # relative imports count too
        ("runtime/_bad.py", "import torch\n", "runtime imports no torch"),
        ("export/_bad.py", "import pocketgan.runtime.bench\n", "Earlier stages import no runtime"),
        ("core/_bad.py", "import numpy\n", "standard library only"),
        ("imaging.py", "import torch\n", "Imaging"),  # the module every stage reads pixels with
    ],
)
def test_a_bad_import_breaks_a_contract(tmp_path, module, line, contract):
    tree = mirror(tmp_path)
    (tree / "pocketgan" / module).write_text(line)
    result = lint(tree)
    report = " ".join(result.stdout.split())  # import-linter wraps long lines
    bad = "pocketgan." + module.removesuffix(".py").replace("/", ".")
    assert result.returncode != 0
    assert f"{contract}" in report and f"{bad} ->" in report, result.stdout[-3000:]


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
