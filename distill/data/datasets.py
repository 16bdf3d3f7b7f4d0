"""Torch datasets over the pix2pix aligned, CycleGAN unaligned and unconditional layouts, and :func:`open_dataset`.

Every item is ``{"A": input, "B": target, "name": str}`` with ``A``/``B`` float32 ``3×H×W``
normalized as the model's :class:`~pocketgan.core.contract.IOSpec` says (default ``[-1, 1]``);
``A`` is always the generator's input (``direction="BtoA"`` swaps the sides). An unconditional
dataset (layout ``images``: a StyleGAN2 generates from a latent, it has no input image) has no
``A``: its items are ``{"B": real image, "name": str}``, ``B`` being, as everywhere, what the
generator must produce. Files are read,
resized and normalized by :mod:`pocketgan.imaging`, as calibration and the runtime do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from pocketgan.core.contract import IOSpec
from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback
from pocketgan.distill.data.images import MIN_SIDE, ImageError, ImageScan, read_rgb, scan_images
from pocketgan.distill.data.transforms import PairTransform, item_rng, to_tensor
from pocketgan.distill.data.layouts import IMAGES
from pocketgan.imaging import ALIGNED, UNALIGNED, aligned_halves, locate_split, read_dataset_json

DIRECTIONS = ("AtoB", "BtoA")
LAYOUTS = (ALIGNED, UNALIGNED, IMAGES)


class PairedImageDataset(Dataset):
    """What both layouts share: the transform, the direction and the per-item RNG.

    With ``augment``, item ``i`` of epoch ``e`` draws its random choices from
    ``item_rng(seed, e, i)`` only; the trainer calls :meth:`set_epoch` at each epoch start.
    """

    layout = ""

    def __init__(self, transform: PairTransform, direction: str = "AtoB", seed: int = 0) -> None:
        self.transform = transform
        self.direction = direction
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation the next items use."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return item_rng(self.seed, self.epoch, index)

    def item(self, a: np.ndarray, b: np.ndarray, name: str) -> dict[str, Any]:
        return {"A": to_tensor(a, self.transform.io), "B": to_tensor(b, self.transform.io), "name": name}


class AlignedDataset(PairedImageDataset):
    """pix2pix *aligned*: each image is A (left half) | B (right half); both halves get the same transform.

    An odd width leaves the extra column to B, which is then cropped to A's width.
    """

    layout = "aligned"

    def __init__(self, scan: ImageScan, transform: PairTransform, direction: str = "AtoB", seed: int = 0) -> None:
        super().__init__(transform, direction, seed)
        self.root = scan.folder
        self.paths = scan.paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        a, b = aligned_halves(_read(path))
        a, b = self.transform([a, b], self.rng(index) if self.transform.augment else None)
        if self.direction == "BtoA":
            a, b = b, a
        return self.item(a, b, _name(path, self.root))


class UnalignedDataset(PairedImageDataset):
    """CycleGAN *unaligned*: ``len = max(#A, #B)``; item ``i`` is ``A[i % #A]`` with a B image.

    The B image is ``B[i % #B]`` without augment (a fixed pairing, for evaluation), and a
    random B drawn from the item's ``(seed, epoch, index)`` RNG with augment (CycleGAN's
    unaligned sampling). A and B are transformed independently. With ``direction="BtoA"``
    the folders swap roles.
    """

    layout = "unaligned"

    def __init__(self, scan_a: ImageScan, scan_b: ImageScan, transform: PairTransform, direction: str = "AtoB",
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(transform, direction, seed)
        self.scans = (scan_b, scan_a) if direction == "BtoA" else (scan_a, scan_b)

    def __len__(self) -> int:
        return max(len(scan.paths) for scan in self.scans)

    def __getitem__(self, index: int) -> dict[str, Any]:
        inputs, targets = self.scans
        rng = self.rng(index) if self.transform.augment else None
        other = int(rng.integers(len(targets.paths))) if rng is not None else index % len(targets.paths)
        path = inputs.paths[index % len(inputs.paths)]
        (a,) = self.transform([_read(path)], rng)
        (b,) = self.transform([_read(targets.paths[other])], rng)
        return self.item(a, b, _name(path, inputs.folder))


class ImageDataset(PairedImageDataset):
    """Unconditional *images*: ``<split>/`` holds single images; item ``i`` is ``{"B": image i, "name"}``.

    No input side, so no direction. With ``augment`` and ``mirror`` the image is flipped
    horizontally with probability ½ (StyleGAN2-ADA's ``--mirror``; the item's RNG decides); pix2pix's
    resize-and-crop jitter is never applied (it would change the distribution being learned).
    """

    layout = IMAGES

    def __init__(self, scan: ImageScan, transform: PairTransform, seed: int = 0, mirror: bool = False) -> None:
        super().__init__(PairTransform(transform.size, False, transform.io), "AtoB", seed)
        self.root = scan.folder
        self.paths = scan.paths
        self.mirror = mirror and transform.augment

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        (image,) = self.transform([_read(path)], None)
        if self.mirror and self.rng(index).random() < 0.5:
            image = np.ascontiguousarray(image[:, ::-1])
        return {"B": to_tensor(image, self.transform.io), "name": _name(path, self.root)}


def dataset_layout(root: str | os.PathLike[str], split: str = "train") -> str:
    """``images`` when ``root/dataset.json`` says so, else what the folders of ``split`` show (aligned/unaligned)."""
    if read_dataset_json(root).get("layout") == IMAGES:
        return IMAGES
    return locate_split(root, split).layout


def open_dataset(root: str | os.PathLike[str], split: str = "train", size: int | None = None,
                 direction: str = "AtoB", augment: bool = False, *, seed: int = 0, io: IOSpec | None = None,
                 progress: ProgressCallback | None = None,
                 layout: str | None = None) -> PairedImageDataset:  # fmt: skip
    """Open ``split`` of the dataset at ``root``, detecting its layout (pix2pix aligned or CycleGAN unaligned).

    ``size`` resizes every image to ``size × size`` (``None``: native size); ``augment``
    adds pix2pix's resize-to-286/256, random crop and flip, as a pure function of
    ``(seed, epoch, index)``. ``io`` (default: pocketgan's ``x / 127.5 - 1``, area resize)
    says how pixels are resized and normalized. Odd files are converted or skipped with one
    :class:`~pocketgan.distill.data.images.DatasetWarning`; a missing or empty split
    raises a one-line :class:`PocketganError`. ``layout`` (default: detected, see
    :func:`dataset_layout`) forces one; ``images`` reads ``<split>/`` as single images
    (:class:`ImageDataset`; ``augment`` then only mirrors, and only if ``dataset.json`` allows it).
    """
    if layout is not None and layout not in LAYOUTS:
        raise PocketganError(f"layout {layout!r}: expected {', '.join(LAYOUTS)}")
    if direction not in DIRECTIONS:
        raise PocketganError(f"direction {direction!r}: expected AtoB or BtoA")
    if size is not None and (not isinstance(size, int) or size < 1):
        raise PocketganError(f"size {size!r}: expected a positive number of pixels")
    location = locate_split(root, split)
    transform = PairTransform(size, augment, io or IOSpec())
    if (layout or dataset_layout(root, split)) == IMAGES:
        if location.layout != ALIGNED:
            raise PocketganError(f"{root}: an unconditional (images) dataset has {split}/ folders, "
                                 f"not {split}A/ + {split}B/")  # fmt: skip
        scan = _scan_split(location.folders[0], progress=progress)
        return ImageDataset(scan, transform, seed, mirror=bool(read_dataset_json(root).get("mirror", True)))
    if location.layout == ALIGNED:
        (folder,) = location.folders
        scan = _scan_split(folder, min_width=2 * MIN_SIDE, progress=progress)
        return AlignedDataset(scan, transform, direction, seed)
    scan_a, scan_b = (_scan_split(folder, progress=progress) for folder in location.folders)
    return UnalignedDataset(scan_a, scan_b, transform, direction, seed)


def _scan_split(folder: Path, *, min_width: int = MIN_SIDE, progress: ProgressCallback | None) -> ImageScan:
    scan = scan_images(folder, min_width=min_width, progress=progress, warn=False)
    if not scan.paths:
        detail = f" ({scan.skip_summary()})" if scan.skipped else ""
        raise PocketganError(f"{folder}: no usable images{detail}")
    scan.warn()
    return scan


def _read(path: Path) -> np.ndarray:
    try:
        return read_rgb(path)
    except ImageError as exc:
        raise PocketganError(f"{path}: {exc} (did it change after the dataset was opened?)") from None


def _name(path: Path, folder: Path) -> str:
    return path.relative_to(folder).with_suffix("").as_posix()
