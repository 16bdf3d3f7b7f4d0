"""What the foundation-model image towers (DINO ResNet-50, CLIP RN50) share: weights files and input handling.

Neither tower can be downloaded here, so each loads a LOCAL weights file with its published key
names: a ``.pth``/``.pt`` state dict (read with ``torch.load(weights_only=True)``: no code is
unpickled) or a ``.safetensors`` file. :func:`tower_for_weights` tells, from a file's key names
alone, which tower it holds, so ``--feature /path/dino_resnet50_pretrain.pth`` needs no name.

Inputs arrive as pocketgan images (``N×3×H×W`` in ``[-1, 1]``); :func:`imagenet_input` maps them
to ``[0, 1]``, resizes to the tower's 224×224 (bilinear, differentiable, as the released DiME code
does) and applies the tower's mean/std normalization.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pocketgan.core.errors import PocketganError
from pocketgan.distill.features.base import FeatureNetwork

INPUT_SIZE = 224
WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")
#: The towers (feature-network names) that load from a weights file: ``--feature NAME=PATH``.
TOWERS = ("dino-resnet50", "clip-rn50")

#: Wrapper prefixes stripped from a state dict's keys (DataParallel's, DINO's backbone wrapper).
WRAPPER_PREFIXES = ("module.", "backbone.")
V = TypeVar("V")


def strip_prefixes(state: dict[str, V], prefixes: Iterable[str] = WRAPPER_PREFIXES) -> dict[str, V]:
    """``state`` with each wrapper prefix removed from the start of every key (in order)."""
    out = {}
    for key, value in state.items():
        for prefix in prefixes:
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def _weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Key → shape of a weights file, without reading its tensors into memory."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        return {}
    return {str(k): tuple(v.shape) for k, v in state.items() if isinstance(v, Tensor)}


def tower_for_weights(path: str | os.PathLike[str]) -> str | None:
    """``"clip-rn50"`` or ``"dino-resnet50"`` when the file at ``path`` holds that tower's weights, else ``None``.

    Decided from key names and shapes only (a CLIP ResNet has an attention pool; a torchvision
    ResNet a 7×7 stem of 64 channels); unreadable files give ``None``, and the caller's own loader reports them.
    """
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in WEIGHT_SUFFIXES:
        return None
    try:
        shapes = strip_prefixes(_weight_shapes(path))
    except Exception:  # not a tensors-only file: let the caller's loader say so
        return None
    if "visual.attnpool.positional_embedding" in shapes or "attnpool.positional_embedding" in shapes:
        return "clip-rn50"
    if shapes.get("conv1.weight") == (64, 3, 7, 7) and "layer4.0.conv1.weight" in shapes:
        return "dino-resnet50"
    return None


def read_tower_state(path: str | os.PathLike[str], tower: str) -> dict[str, Tensor]:
    """The tensors of a local weights file for ``tower`` (one line if missing, unreadable or a TorchScript archive)."""
    from pocketgan.models.io import read_state_dict

    path = Path(path)
    if not path.is_file():
        raise PocketganError(f"{path}: no such {tower} weights file")
    if path.suffix.lower() != ".safetensors" and _is_torchscript(path):
        raise PocketganError(
            f"{path}: a TorchScript archive (OpenAI's RN50.pt), which pocketgan does not execute; convert it once "
            "where the clip package is installed: torch.save(clip.load('RN50', jit=False)[0].state_dict(), "
            "'clip-rn50.pth'), or use open_clip's RN50 openai .safetensors"
        )
    return read_state_dict(path)


def _is_torchscript(path: Path) -> bool:
    """A TorchScript zip archive holds a ``constants.pkl``/``code/`` entry, a plain state dict does not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


def load_tower_weights(net: nn.Module, state: dict[str, Tensor], where: str) -> None:
    """Strict load of ``state`` into ``net``; batch-norm step counters are filled in when absent."""
    from pocketgan.models.io import load_state_dict_checked

    counters = {k: v for k, v in net.state_dict().items() if k.endswith("num_batches_tracked")}
    load_state_dict_checked(net, {**counters, **state}, where)


def imagenet_input(x: Tensor, mean: Sequence[float], std: Sequence[float], size: int = INPUT_SIZE) -> Tensor:
    """``x`` in ``[-1, 1]`` → ``[0, 1]``, resized to ``size``×``size`` (bilinear), normalized by ``mean``/``std``."""
    x = (x + 1) / 2
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    mean_t = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean_t) / std_t


def find_tower_weights(cache_dir: Path, patterns: Sequence[str]) -> Path | None:
    """The first file in ``cache_dir`` matching one of ``patterns`` (in pattern order), or ``None``."""
    if cache_dir.is_dir():
        for pattern in patterns:
            found = sorted(p for p in cache_dir.glob(pattern) if p.suffix.lower() in WEIGHT_SUFFIXES)
            if found:
                return found[0]
    return None


def tower_factory(
    tower: str, patterns: Sequence[str], load: Callable[[Path], FeatureNetwork]
) -> Callable[..., FeatureNetwork]:
    """A feature-network factory for ``tower``: the ``weights`` file given, else one found in the cache directory."""

    def factory(*, weights: str | os.PathLike[str] | None = None, cache_dir: Path, **_) -> FeatureNetwork:
        path = Path(weights) if weights is not None else find_tower_weights(Path(cache_dir), patterns)
        if path is None:
            raise PocketganError(
                f"{tower} needs a local weights file (nothing is downloaded here): pass --feature {tower}=PATH "
                f"or the file's path, or copy it into {cache_dir} as {' or '.join(patterns)}"
            )
        return load(path)

    factory.__doc__ = f"{tower} from a local weights file (``weights=``, or found in the cache directory)."
    return factory
