"""Embedded dataset builders: a registry, and the atomic writer of pix2pix aligned folders.

A builder is a function ``build(out, *, size, count, val_count, seed, progress, **options) -> Path``
registered under a name with the builder-specific ``options`` it takes (name → help);
:func:`build_dataset` runs one by name (``pocketgan run`` recipes say ``data.builder:
edges2photos``), and ``pocketgan data`` makes one sub-command per registered builder, plugins
(entry-point group ``pocketgan.datasets``) included. Builders describe their pairs and
metadata; :func:`write_aligned_dataset` does the writing: A | B PNGs under ``train/`` and
``val/``, ``dataset.json`` with the content fingerprint, all in a temporary folder renamed into place.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.core.fsio import atomic_path, write_json_atomic
from pocketgan.core.options import parse_key_values
from pocketgan.core.progress import ProgressCallback, ProgressTask
from pocketgan.core.registry import Registry, did_you_mean
from pocketgan.distill.data.images import encode_png
from pocketgan.distill.data.layouts import ALIGNED, DATASET_JSON, dataset_fingerprint

DATASET_FORMAT_VERSION = 1
COMMON_SETTINGS = ("size", "count", "val_count", "seed")
"""Settings every builder takes (``--size``, ``--count``, ``--val-count``, ``--seed``), beside ``out`` and ``progress``."""
Pair = tuple[str, np.ndarray, np.ndarray]
"""``(file stem, A, B)``: two RGB ``uint8`` arrays of the same height."""


@dataclass(frozen=True)
class DatasetBuilder:
    """A registered builder: ``name`` (the CLI sub-command), a one-line ``summary``, its function,
    the builder-specific ``options`` it takes (name → one-line help; ``--option name=VALUE`` on
    the CLI) and a longer ``description`` for its ``--help``."""

    name: str
    summary: str
    build: Callable[..., Path]
    options: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def defaults(self) -> dict[str, Any]:
        """The build function's defaults of the common settings (``{"size": 128, ...}``)."""
        parameters = inspect.signature(self.build).parameters
        return {name: parameters[name].default for name in COMMON_SETTINGS
                if name in parameters and parameters[name].default is not inspect.Parameter.empty}  # fmt: skip

    def parse_options(self, items: Iterable[str] | None) -> dict[str, Any]:
        """``["photos=DIR"]`` → ``{"photos": "DIR"}``, refusing options this builder does not declare."""
        options = parse_key_values(items)
        self.check_options(options)
        return options

    def check_options(self, options: Mapping[str, Any]) -> None:
        """One-line error naming the first option that is neither common nor declared by this builder."""
        known = [*COMMON_SETTINGS, *self.options]
        for name in options:
            if name not in known:
                declared = ", ".join(self.options) or "none"
                raise PocketganError(
                    f"dataset builder {self.name!r} has no option {name!r}{did_you_mean(name, known)} "
                    f"(its options: {declared})"
                )


#: Embedded dataset builders; plugins: entry-point group ``pocketgan.datasets`` (a :class:`DatasetBuilder`).
BUILDERS: Registry[DatasetBuilder] = Registry(
    "dataset builder",
    group="pocketgan.datasets",
    builtin_modules=(
        "pocketgan.distill.data.edges2photos",
        "pocketgan.distill.data.photos2stylized",
        "pocketgan.distill.data.unpaired_stylized",
        "pocketgan.distill.data.digits",
    ),
)


def register_builder(name: str, summary: str, *, options: Mapping[str, str] | None = None,
                     description: str = "") -> Callable[[Callable[..., Path]], Callable[..., Path]]:  # fmt: skip
    """Decorator: register ``build(out, *, size, count, val_count, seed, progress, **options)`` as ``name``.

    ``options`` maps each builder-specific keyword of ``build`` to a one-line help.
    """

    def decorate(build: Callable[..., Path]) -> Callable[..., Path]:
        BUILDERS.register(name, DatasetBuilder(name, summary, build, dict(options or {}), description))
        return build

    return decorate


def list_builders() -> dict[str, str]:
    """``{name: summary}`` of the registered builders."""
    return {name: builder.summary for name, builder in BUILDERS.items()}


def get_builder(name: str) -> DatasetBuilder:
    """The builder called ``name``; a one-line error listing the known ones otherwise."""
    return BUILDERS.get(name)


def build_dataset(name: str, out: str | os.PathLike[str], *, progress: ProgressCallback | None = None,
                  **settings: Any) -> Path:  # fmt: skip
    """Run builder ``name`` into ``out`` with ``settings`` (common ones and the builder's options); return ``out``."""
    builder = get_builder(name)
    builder.check_options(settings)
    return builder.build(out, progress=progress, **settings)


def check_output_dir(out: Path) -> None:
    """``out`` may be new, empty, or a previous build (it has ``dataset.json``); anything else is refused."""
    if out.exists() and not out.is_dir():
        raise PocketganError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / DATASET_JSON).is_file():
        raise PocketganError(f"--out {out}: exists, is not empty and holds no {DATASET_JSON}; choose another folder")


def write_aligned_dataset(out: str | os.PathLike[str], splits: dict[str, tuple[int, Iterable[Pair]]],
                          meta: dict[str, Any], *, progress: ProgressCallback | None = None,
                          extra_json: dict[str, Callable[[], Any]] | None = None) -> Path:  # fmt: skip
    """Write ``{split: (count, pairs)}`` as a pix2pix aligned dataset at ``out``, atomically.

    Each pair becomes ``<split>/<stem>.png`` (A | B side by side). ``dataset.json`` gets
    ``meta`` plus the layout, the counts and ``content_hash`` (= :func:`dataset_fingerprint`).
    ``extra_json`` maps more JSON files to functions called once the pairs are written
    (e.g. the crops' provenance). A previous build at ``out`` is replaced only once the new
    one is complete. ``progress`` hears one task over all pairs.
    """
    out = Path(out)
    check_output_dir(out)
    total = sum(count for count, _ in splits.values())
    with atomic_path(out, directory=True) as tmp, ProgressTask(progress, f"building {out.name}", total) as task:
        for split, (_, pairs) in splits.items():
            folder = tmp / split
            folder.mkdir()
            task.update(status=split)
            for stem, a, b in task.track(pairs):
                (folder / f"{stem}.png").write_bytes(encode_png(np.concatenate([a, b], axis=1)))
        info = {
            **meta,
            "layout": ALIGNED,
            "counts": {split: count for split, (count, _) in splits.items()},
            "content_hash": dataset_fingerprint(tmp),
            "format_version": DATASET_FORMAT_VERSION,
        }
        write_json_atomic(tmp / DATASET_JSON, info)
        for name, content in (extra_json or {}).items():
            write_json_atomic(tmp / name, content())
    return out


ImageItems = Iterable[tuple[str, np.ndarray]]
"""``(file stem, RGB uint8 image)`` items of one folder."""


def write_image_folders(out: str | os.PathLike[str], folders: Mapping[str, tuple[int, ImageItems]],
                        meta: dict[str, Any], *, layout: str, progress: ProgressCallback | None = None,
                        extra_json: Mapping[str, Callable[[], Any]] | None = None) -> Path:  # fmt: skip
    """Write ``{folder: (count, (stem, image) items)}`` as folders of single PNGs at ``out``, atomically.

    The writer of the layouts whose files are single images (CycleGAN ``unaligned``: ``trainA/`` ...;
    unconditional ``images``: ``train/``, ``val/``). ``dataset.json`` gets ``meta``, ``layout``, the
    counts and ``content_hash`` (= :func:`dataset_fingerprint`); ``extra_json`` maps more JSON files
    to functions called once the images are written. ``progress`` hears one task over all images.
    """
    out = Path(out)
    check_output_dir(out)
    total = sum(count for count, _ in folders.values())
    with atomic_path(out, directory=True) as tmp, ProgressTask(progress, f"building {out.name}", total) as task:
        for folder, (_, images) in folders.items():
            (tmp / folder).mkdir()
            task.update(status=folder)
            for stem, image in task.track(images):
                (tmp / folder / f"{stem}.png").write_bytes(encode_png(image))
        info = {**meta, "layout": layout, "counts": {folder: count for folder, (count, _) in folders.items()},
                "content_hash": dataset_fingerprint(tmp), "format_version": DATASET_FORMAT_VERSION}  # fmt: skip
        write_json_atomic(tmp / DATASET_JSON, info)
        for name, content in (extra_json or {}).items():
            write_json_atomic(tmp / name, content())
    return out
