"""Embedded dataset builders: a small registry, and the atomic writer of pix2pix aligned folders.

A builder is a function ``build(out, *, size, count, val_count, seed, progress, **options) -> Path``
registered under a name; :func:`build_dataset` runs one by name (``pocketgan run`` recipes
say ``data.builder: edges2photos``). Builders describe their pairs and metadata;
:func:`write_aligned_dataset` does the writing: A | B PNGs under ``train/`` and ``val/``,
``dataset.json`` with the content fingerprint, all in a temporary folder renamed into place.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.distill.data.images import encode_png
from pocketgan.distill.data.layouts import ALIGNED, DATASET_JSON, dataset_fingerprint
from pocketgan.core.errors import PocketganError
from pocketgan.core.fsio import atomic_path, write_json_atomic
from pocketgan.core.registry import Registry

DATASET_FORMAT_VERSION = 1
Pair = tuple[str, np.ndarray, np.ndarray]
"""``(file stem, A, B)``: two RGB ``uint8`` arrays of the same height."""


@dataclass(frozen=True)
class DatasetBuilder:
    """A registered builder: ``name`` (the CLI sub-command), a one-line ``summary`` and its function."""

    name: str
    summary: str
    build: Callable[..., Path]


#: Embedded dataset builders; plugins: entry-point group ``pocketgan.datasets`` (a :class:`DatasetBuilder`).
BUILDERS: Registry[DatasetBuilder] = Registry(
    "dataset builder", group="pocketgan.datasets", builtin_modules=("pocketgan.distill.data.edges2photos",)
)


def register_builder(name: str, summary: str) -> Callable[[Callable[..., Path]], Callable[..., Path]]:
    """Decorator: register ``build(out, *, size, count, val_count, seed, progress, **options)`` as ``name``."""

    def decorate(build: Callable[..., Path]) -> Callable[..., Path]:
        BUILDERS.register(name, DatasetBuilder(name, summary, build))
        return build

    return decorate


def list_builders() -> dict[str, str]:
    """``{name: summary}`` of the registered builders."""
    return {name: builder.summary for name, builder in BUILDERS.items()}


def get_builder(name: str) -> DatasetBuilder:
    """The builder called ``name``; a one-line error listing the known ones otherwise."""
    return BUILDERS.get(name)


def build_dataset(name: str, out: str | os.PathLike[str], **options: Any) -> Path:
    """Run builder ``name`` into ``out`` (options as the builder takes them) and return ``out``."""
    return get_builder(name).build(out, **options)


def check_output_dir(out: Path) -> None:
    """``out`` may be new, empty, or a previous build (it has ``dataset.json``); anything else is refused."""
    if out.exists() and not out.is_dir():
        raise PocketganError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / DATASET_JSON).is_file():
        raise PocketganError(f"--out {out}: exists, is not empty and holds no {DATASET_JSON}; choose another folder")


def write_aligned_dataset(out: str | os.PathLike[str], splits: dict[str, tuple[int, Iterable[Pair]]],
                          meta: dict[str, Any], *, progress: bool = True,
                          extra_json: dict[str, Callable[[], Any]] | None = None) -> Path:  # fmt: skip
    """Write ``{split: (count, pairs)}`` as a pix2pix aligned dataset at ``out``, atomically.

    Each pair becomes ``<split>/<stem>.png`` (A | B side by side). ``dataset.json`` gets
    ``meta`` plus the layout, the counts and ``content_hash`` (= :func:`dataset_fingerprint`).
    ``extra_json`` maps more JSON files to functions called once the pairs are written
    (e.g. the crops' provenance). A previous build at ``out`` is replaced only once the new
    one is complete.
    """
    out = Path(out)
    check_output_dir(out)
    total = sum(count for count, _ in splits.values())
    with atomic_path(out, directory=True) as tmp, _Bar(total, f"building {out.name}", progress) as bar:
        for split, (_, pairs) in splits.items():
            folder = tmp / split
            folder.mkdir()
            for stem, a, b in bar.track(pairs, split):
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


class _Bar:
    """A transient rich progress bar on stderr over all splits (silent when disabled)."""

    def __init__(self, total: int, description: str, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from pocketgan.console import err_console

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.progress = Progress(*columns, console=err_console, transient=True, disable=not enabled)
        self.task = self.progress.add_task(description, total=total)
        self.description = description

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def track(self, items: Iterable[Pair], split: str) -> Iterator[Pair]:
        self.progress.update(self.task, description=f"{self.description} {split}")
        for item in items:
            yield item
            self.progress.advance(self.task)
