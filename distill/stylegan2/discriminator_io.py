"""A StyleGAN2 teacher's discriminator, saved beside its generator so distillers can keep training it.

``TEACHER/discriminator/`` holds ``discriminator.safetensors`` and ``discriminator.json``
(``{"arch": "stylegan2", "config": {...}, "weights_sha256": ...}``); the generator's model directory
``TEACHER/`` itself is unchanged (every stage reads it as any model directory).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.fsio import atomic_path, read_json, sha256_file, write_json_atomic

DISCRIMINATOR_DIR = "discriminator"
WEIGHTS = "discriminator.safetensors"
MANIFEST = "discriminator.json"
ARCH = "stylegan2"


def discriminator_config(generator: nn.Module, **overrides: Any) -> dict[str, Any]:
    """The ``stylegan2`` discriminator config matching ``generator``: the generator's config keys the
    discriminator factory also takes (size, channel_multiplier, config, ...), then ``overrides``."""
    from pocketgan.models.registry import DISCRIMINATORS

    factory = DISCRIMINATORS.get(ARCH)
    parameters = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    config = dict(getattr(generator, "config", {}) or {})
    chosen = {k: v for k, v in config.items() if k in parameters and k != "widths"} if not takes_any else config
    chosen.setdefault("size", int(generator.size))
    return {**chosen, **overrides}


def build_discriminator(config: dict[str, Any]) -> nn.Module:
    """A fresh ``stylegan2`` discriminator of ``config``."""
    from pocketgan.models import create_discriminator

    return create_discriminator(ARCH, **config)


def save_discriminator(discriminator: nn.Module, model_dir: str | os.PathLike[str], config: dict[str, Any]) -> Path:
    """Write ``model_dir/discriminator/`` (weights first, manifest last, each atomically)."""
    from safetensors.torch import save_file

    folder = Path(model_dir) / DISCRIMINATOR_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in discriminator.state_dict().items()}
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"arch": ARCH})
    manifest = {"arch": ARCH, "config": config, "weights_sha256": sha256_file(folder / WEIGHTS)}
    write_json_atomic(folder / MANIFEST, manifest)
    return folder


def has_discriminator(model_dir: str | os.PathLike[str]) -> bool:
    """Whether ``model_dir`` has a saved discriminator."""
    return (Path(model_dir) / DISCRIMINATOR_DIR / MANIFEST).is_file()


def load_discriminator(model_dir: str | os.PathLike[str]) -> nn.Module | None:
    """The discriminator saved in ``model_dir`` (``None`` when there is none); a mismatch is one line."""
    from pocketgan.models.io import check_weights_sha256, load_state_dict_checked, read_state_dict

    folder = Path(model_dir) / DISCRIMINATOR_DIR
    if not (folder / MANIFEST).is_file():
        return None
    manifest = read_json(folder / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("arch") != ARCH or not isinstance(manifest.get("config"), dict):
        raise PocketganError(f"{folder / MANIFEST}: not a StyleGAN2 discriminator manifest")
    check_weights_sha256(folder / WEIGHTS, manifest.get("weights_sha256"))
    discriminator = build_discriminator(manifest["config"])
    load_state_dict_checked(discriminator, read_state_dict(folder / WEIGHTS), str(folder / WEIGHTS))
    discriminator.config = dict(manifest["config"])  # type: ignore[attr-defined]
    return discriminator


def discriminator_digest(model_dir: str | os.PathLike[str]) -> str | None:
    """The saved discriminator's ``weights_sha256`` (recorded in a run's identity), ``None`` when absent."""
    folder = Path(model_dir) / DISCRIMINATOR_DIR
    if not (folder / MANIFEST).is_file():
        return None
    return read_json(folder / MANIFEST).get("weights_sha256")


CHECKPOINT_SUFFIXES = (".pt", ".pkl")
"""StyleGAN2 checkpoint files a teacher may be given as: rosinality ``.pt``, NVlabs ``.pkl``."""


def is_stylegan2_checkpoint(ref: str | os.PathLike[str]) -> bool:
    """Whether ``ref`` is a StyleGAN2 checkpoint file (by its suffix: ``.pt``, ``.pkl``)."""
    path = Path(str(ref))
    return path.is_file() and path.suffix.lower() in CHECKPOINT_SUFFIXES


def teacher_discriminator(ref: str | os.PathLike[str]) -> tuple[nn.Module | None, str | None]:
    """The discriminator beside a StyleGAN2 teacher and its digest: ``DIR/discriminator`` of a model directory,
    or a checkpoint file's ``d`` / ``D`` (digest: the file's SHA-256); ``(None, None)`` when there is none."""
    if Path(str(ref)).is_dir():
        return load_discriminator(ref), discriminator_digest(ref)
    if not is_stylegan2_checkpoint(ref):
        return None, None
    from pocketgan.models.stylegan2.checkpoints import load_stylegan2_discriminator

    try:
        discriminator = load_stylegan2_discriminator(ref)
    except PocketganError as exc:
        if "has no discriminator" in str(exc):
            return None, None
        raise
    return discriminator, sha256_file(ref)


def import_discriminator(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> bool:
    """Save ``source``'s discriminator (see :func:`teacher_discriminator`) to ``out/discriminator``; False if none."""
    discriminator, _ = teacher_discriminator(source)
    if discriminator is None:
        return False
    save_discriminator(discriminator, out, dict(discriminator.config))
    return True
