"""int8 calibration inputs: real images from the model's own dataset by default, cached.

Where they come from, first match wins:

1. ``--calibration DIR`` (a folder of images or a dataset),
2. the dataset the model was trained on, from its provenance (``provenance["data"]``, written by
   ``pocketgan teacher`` / ``distill``), when that directory exists here,
3. synthetic inputs (:func:`pocketgan.export.samples.synthetic_inputs`, another seed than parity's).

Real images are read, resized and normalized once and cached as ``.npy`` under
``$POCKETGAN_CACHE/calibration`` (default ``~/.cache/pocketgan/calibration``), keyed by the
directory, its file list and sizes, the input size, the count and the I/O spec.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pocketgan.core.contract import IOSpec
from pocketgan.core.fsio import atomic_path
from pocketgan.core.keys import fingerprint
from pocketgan.export.samples import read_calibration_images, synthetic_inputs


@dataclass(frozen=True)
class CalibrationSet:
    """The calibration inputs (NCHW float32) and where they came from (for the sidecar)."""

    inputs: torch.Tensor
    source: str


def calibration_set(
    directory: Path | None, provenance: dict[str, object], io: IOSpec, size: tuple[int, int], *, count: int, seed: int
) -> CalibrationSet:
    """The calibration inputs, by the rules of the module docstring."""
    if directory is None and isinstance(provenance.get("data"), str) and Path(str(provenance["data"])).is_dir():
        directory = Path(str(provenance["data"]))
        label = f"{directory} (the model's dataset)"
    else:
        label = str(directory)
    if directory is None:
        return CalibrationSet(synthetic_inputs(io, count, size, seed=seed + 1), "synthetic inputs")
    cache = cache_dir() / f"{_key(directory, io, size, count)}.npy"
    if cache.is_file():
        return CalibrationSet(torch.from_numpy(np.load(cache)), f"{label}, cached")
    images = read_calibration_images(directory, io, size, limit=count)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp, open(tmp, "wb") as handle:
        np.save(handle, images.numpy())
    return CalibrationSet(images, label)


#: ``calibration_source`` values that are not real images.
SYNTHETIC_SOURCES = ("", "synthetic inputs", "random latents")


def is_real(source: str) -> bool:
    """Whether a calibration ``source`` (as recorded in the sidecar) is real images."""
    return source not in SYNTHETIC_SOURCES


def cache_dir() -> Path:
    """``$POCKETGAN_CACHE/calibration`` when the variable is set, else ``~/.cache/pocketgan/calibration``."""
    root = os.environ.get("POCKETGAN_CACHE")
    return Path(root).expanduser() / "calibration" if root else Path.home() / ".cache" / "pocketgan" / "calibration"


def _key(directory: Path, io: IOSpec, size: tuple[int, int], count: int) -> str:
    files = sorted((str(p.relative_to(directory)), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in directory.rglob("*") if p.is_file() and ".pocketgan" not in p.name)  # fmt: skip
    return fingerprint(str(directory.resolve()), files, io.to_dict(), list(size), count)
