"""Resolving ``MODEL`` arguments and reading/writing model directories.

``MODEL`` is one of:
- an architecture reference, ``resnet9:ngf=64`` (random weights, for planning);
- a model directory (``model.safetensors`` + ``model.json``);
- a checkpoint file (official ``latest_net_G.pth`` or a ``.safetensors``) with ``arch``.
"""

from __future__ import annotations

import datetime as _dt
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pocketgan import __version__
from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import GeneratorSpec, MODEL_JSON, MODEL_WEIGHTS, ModelManifest, Profile
from pocketgan.core.fsio import atomic_path, sha256_file
from pocketgan.models.base import Generator
from pocketgan.models.registry import create_generator, is_reference, parse_reference


@dataclass
class LoadedModel:
    """A generator in eval mode with the manifest that describes it."""

    model: Generator
    manifest: ModelManifest

    @property
    def name(self) -> str:
        return str(self.manifest.provenance.get("name") or self.manifest.spec.arch)


def build_generator(spec: GeneratorSpec) -> Generator:
    """Rebuild a generator (random weights) from its spec, pruned widths included."""
    return create_generator(spec.arch, widths=spec.widths, **spec.config)


def load_model(ref: str | os.PathLike[str], arch: str | None = None) -> LoadedModel:
    """Resolve a ``MODEL`` argument (see module docstring) to a generator in eval mode."""
    text = str(ref)
    path = Path(text)
    if path.is_dir():
        loaded = _load_model_dir(path)
    elif path.is_file():
        if not arch:
            raise PocketganError(f"{path}: a checkpoint file needs --arch (e.g. --arch resnet9)")
        model = _from_reference(arch)
        load_state_dict_checked(model, read_state_dict(path), str(path))
        manifest = ModelManifest(spec=model.spec(), io=model.io, provenance={"source": str(path), "name": path.stem})
        loaded = LoadedModel(model, manifest)
    elif is_reference(text):
        model = _from_reference(text)
        manifest = ModelManifest(spec=model.spec(), io=model.io, provenance={"source": text, "name": text})
        loaded = LoadedModel(model, manifest)
    else:
        from pocketgan.models.registry import list_generators

        raise PocketganError(
            f"{text}: no such file or directory, and not an architecture ({', '.join(list_generators())})"
        )
    loaded.model.eval()
    return loaded


def _from_reference(ref: str) -> Generator:
    name, config = parse_reference(ref)
    return create_generator(name, **config)


def _load_model_dir(path: Path) -> LoadedModel:
    if not (path / MODEL_JSON).exists():
        raise PocketganError(f"{path}: not a model directory (no {MODEL_JSON})")
    manifest = ModelManifest.load(path)
    weights = path / MODEL_WEIGHTS
    if not weights.exists():
        raise PocketganError(f"{path}: model directory has no {MODEL_WEIGHTS}")
    model = build_generator(manifest.spec)
    load_state_dict_checked(model, read_state_dict(weights), str(weights))
    manifest.provenance.setdefault("name", path.name)
    return LoadedModel(model, manifest)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` or a torch checkpoint with ``weights_only=True`` (no code is unpickled)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise PocketganError(
            f"{path}: cannot read weights (not a tensors-only checkpoint: pocketgan loads with "
            "weights_only=True and never unpickles code)"
        ) from None
    except Exception as exc:  # corrupt, truncated or not a checkpoint at all
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise PocketganError(f"{path}: cannot read weights ({reason})") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model", "g_ema", "netG"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PocketganError(f"{path}: not a state dict of tensors")
    return state


def load_state_dict_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Strict load that reports missing, unexpected and mis-shaped keys in one line.

    Accepts DataParallel's ``module.`` prefix and drops the running stats that old
    pix2pix checkpoints stored for InstanceNorm layers (as their loader does).
    """
    state = {k.removeprefix("module."): v for k, v in state.items()}
    expected = model.state_dict()
    state = {
        k: v
        for k, v in state.items()
        if k in expected or not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            problems.append(f"{label}: {', '.join(items[:3])}{more}")
    if problems:
        arch = getattr(model, "arch", type(model).__name__)
        raise PocketganError(f"{where} does not fit {arch}: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)


def save_model(
    model: Generator,
    out_dir: str | os.PathLike[str],
    *,
    provenance: dict[str, Any] | None = None,
    profile: Profile | None = None,
) -> ModelManifest:
    """Write ``out_dir`` as a model directory (safetensors + manifest), each file atomically.

    Other files in ``out_dir`` (training checkpoints, logs) are left alone.
    """
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    provenance = {
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "pocketgan_version": __version__,
        **(provenance or {}),
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    # Weights first, manifest last: a directory with a model.json always has matching weights.
    (out_dir / MODEL_JSON).unlink(missing_ok=True)
    with atomic_path(out_dir / MODEL_WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"arch": model.arch})
    manifest = ModelManifest(
        spec=model.spec(),
        io=model.io,
        provenance=provenance,
        profile=profile,
        weights_sha256=sha256_file(out_dir / MODEL_WEIGHTS),
    )
    manifest.save(out_dir)
    return manifest
