"""The pipeline's cache: where stage outputs live, the code each stage's key is salted with, and ``stages.json``.

Cached stages (dataset, teacher, students, pruned model) live under ``$POCKETGAN_CACHE/pipeline/<stage>/<key>``
with ``key = cache_key(stage, resolved settings, *input keys, code=code_version(modules that build it))``.
The run-directory stages (profile, export, bench, eval) write into the run; ``RUN/stages.json``
records their keys and outputs, so that ``--from``/``--only`` can reuse them — only for the same key.
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
from collections.abc import Iterable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketgan.core.contract import MODEL_JSON, MODEL_WEIGHTS
from pocketgan.core.errors import PocketganError
from pocketgan.core.fsio import read_json, sha256_file, write_json_atomic
from pocketgan.core.keys import KEY_LENGTH, code_version

if TYPE_CHECKING:
    from pocketgan.pipeline.records import ModelRecord

STATE_FILE = "stages.json"

#: Modules under ``pocketgan.distill`` that evaluation or dataset building use, not training.
NOT_TRAINING = ("pocketgan.distill.metrics", "pocketgan.distill.evaluation", "pocketgan.distill.quality",
                "pocketgan.distill.data.builders", "pocketgan.distill.data.edges2photos",
                "pocketgan.distill.data.inspect")  # fmt: skip

#: The code of the stages that write into the run directory (their keys gate ``--from``/``--only``).
MEASURE_CODE = {
    "profile": ("pocketgan.models.profile",),
    "export": ("pocketgan.export",),
    "bench": ("pocketgan.runtime",),
    "eval": ("pocketgan.distill.metrics", "pocketgan.distill.evaluation", "pocketgan.distill.quality",
             "pocketgan.distill.features", "pocketgan.distill.data", "pocketgan.imaging"),
}


class NotBuilt(PocketganError):
    """A stage that ``--from``/``--only`` skips has no result for this configuration yet."""


def cache_root() -> Path:
    """``$POCKETGAN_CACHE/pipeline`` (default ``~/.cache/pocketgan/pipeline``)."""
    return Path(os.environ.get("POCKETGAN_CACHE", Path.home() / ".cache" / "pocketgan")) / "pipeline"


def is_model_dir(path: Path) -> bool:
    """``path`` holds a finished model directory (weights and manifest)."""
    return (path / MODEL_JSON).exists() and (path / MODEL_WEIGHTS).exists()


def package_modules(package: str, exclude: Iterable[str] = ()) -> list[str]:
    """The modules of ``package`` (a package's own ``__init__`` as ``pkg.__init__``), minus ``exclude``."""
    found, skip = [f"{package}.__init__"], tuple(exclude)
    for info in pkgutil.walk_packages(import_module(package).__path__, f"{package}."):
        name = f"{info.name}.__init__" if info.ispkg else info.name
        if not any(name == s or name.startswith(f"{s}.") for s in skip):
            found.append(name)
    return sorted(found)


def versions(*modules: str) -> str:
    """:func:`~pocketgan.core.keys.code_version` of those ``modules`` that exist (one may move between releases)."""
    return code_version(*(m for m in modules if _exists(m)))


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def data_code(builder_module: str) -> str:
    """Code version of a built dataset: the dataset package, the image I/O and the builder's own module
    (a plugin's too)."""
    return versions("pocketgan.distill.data", "pocketgan.imaging", builder_module)


def training_code(distiller_module: str) -> str:
    """Code version of a trained model: the training code of ``pocketgan.distill``, the distiller's module
    (a plugin's too), ``pocketgan.models`` and the image I/O."""
    modules = package_modules("pocketgan.distill", NOT_TRAINING)
    return versions(*modules, distiller_module, "pocketgan.models", "pocketgan.imaging")


def prune_code() -> str:
    """Code version of a pruned model: ``pocketgan.models`` (the pruner, the profiler, the rebuild)."""
    return versions("pocketgan.models")


def source_key(ref: str | Path) -> str | None:
    """Content key of an existing model file or directory ``ref`` (None for an architecture reference)."""
    path = Path(ref)
    if path.is_file():
        return sha256_file(path)[:KEY_LENGTH]
    if (path / MODEL_WEIGHTS).is_file():
        return sha256_file(path / MODEL_WEIGHTS)[:KEY_LENGTH]
    return None


class RunState:
    """``RUN/stages.json``: the key and outputs of every run-directory stage that finished."""

    def __init__(self, out: Path) -> None:
        self.path = out / STATE_FILE
        data = read_json(self.path) if self.path.is_file() else {}
        self.stages: dict[str, Any] = dict(data.get("stages") or {}) if isinstance(data, dict) else {}

    def save(self, stage: str, key: str, models: dict[str, ModelRecord], fields: tuple[str, ...],
             extra: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Record that ``stage`` produced ``fields`` of every model (and ``extra``) for ``key``."""
        outputs = {name: record.outputs(fields) for name, record in models.items()}
        self.stages[stage] = {"key": key, "models": outputs, "extra": extra or {}}
        write_json_atomic(self.path, {"stages": self.stages})

    def restore(self, stage: str, key: str, models: dict[str, ModelRecord]) -> dict[str, Any]:
        """Set every model's outputs of ``stage`` from an earlier run with the same ``key``; returns its extra."""
        entry = self.stages.get(stage)
        if not entry or entry.get("key") != key or set(entry.get("models", {})) != set(models):
            held = "results of another configuration" if entry else "no results"
            raise NotBuilt(f"{self.path.parent} holds {held} of stage {stage}")
        for name, values in entry["models"].items():
            models[name].restore(values)
            missing = [v for f, v in values.items() if f in ("out_dir", "artifact") and not Path(v).exists()]
            if missing:
                raise NotBuilt(f"{missing[0]} (an output of stage {stage}) is missing")
        return dict(entry.get("extra") or {})
