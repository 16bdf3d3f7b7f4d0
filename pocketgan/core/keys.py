"""Cache keys: content addresses of a stage's settings, its code and its inputs (standard library only).

A pipeline stage's cache key is ``cache_key(stage, settings, *input_keys, code=code_version(...))``:
change a setting, an upstream input, or the source of the modules that build the stage (a
dataset builder, a distiller, the pruner) and the key changes, so a stale result is never reused.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

KEY_LENGTH = 16


def fingerprint(*parts: Any) -> str:
    """Content address of JSON-serialisable parts (sorted keys; other objects by ``str``)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


@functools.lru_cache(maxsize=None)
def code_version(*modules: str) -> str:
    """A hash of the source files of ``modules`` (a package counts all its ``.py`` files).

    Salts cache keys so that editing the code that built something invalidates it.
    """
    digest = hashlib.sha256()
    for name in modules:
        for path in _source_files(name):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:KEY_LENGTH]


def cache_key(stage: str, settings: Any, *inputs: str, code: str) -> str:
    """The key of one stage's output: its resolved ``settings``, its ``inputs``' keys and its ``code`` version."""
    return fingerprint(stage, settings, list(inputs), code)


def _source_files(module: str) -> list[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"no module named {module!r}")
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: every source file below it
        return sorted(p for p in origin.parent.rglob("*.py") if "__pycache__" not in p.parts)
    return [origin]
