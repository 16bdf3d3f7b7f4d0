"""Resolving ``MODEL`` arguments and reading/writing model directories.

``MODEL`` is one of:
- an architecture reference, ``resnet9:ngf=64`` or ``mypkg.nets:build:channels=16`` (random
  weights, for planning; see :mod:`pocketgan.models.registry` for the syntax);
- a model directory (``model.safetensors`` + ``model.json``);
- a checkpoint file (official ``latest_net_G.pth`` or a ``.safetensors``) with ``arch``; with ``arch`` ``stylegan2``
  also a rosinality ``.pt`` or an NVlabs ``.pkl`` (:mod:`pocketgan.models.stylegan2.checkpoints`).
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
from pocketgan.core.contract import MODEL_JSON, MODEL_WEIGHTS, GeneratorSpec, ModelManifest, Profile
from pocketgan.core.errors import ManifestError, PocketganError, first_line
from pocketgan.core.fsio import atomic_path, sha256_file
from pocketgan.models.base import Generator, as_generator
from pocketgan.models.factory import build_from_reference
from pocketgan.models.registry import FACTORY_SYNTAX, is_reference, parse_reference
from pocketgan.models.wrap import WrappedGenerator, rebuildable


@dataclass
class LoadedModel:
    """A generator in eval mode with the manifest that describes it."""

    model: Generator
    manifest: ModelManifest

    @property
    def name(self) -> str:
        return str(self.manifest.provenance.get("name") or self.manifest.spec.arch)


def build_generator(spec: GeneratorSpec, *, pruners: dict[type, Any] | None = None) -> Generator:
    """Rebuild a generator (random weights) from its spec, pruned widths included.

    ``pruners``: torch-pruning custom pruners (by module type) beyond the registered ones, for a
    wrapped model whose widths are re-applied with the dependency graph.
    """
    return build_from_reference(spec.arch, spec.config, spec.widths, pruners=pruners)


def as_loaded(model: object, what: str) -> LoadedModel:
    """A :class:`LoadedModel` for ``model`` (a LoadedModel, or a generator described by its own spec).

    A plain ``nn.Module`` gets one line saying to wrap it (``pocketgan.models.wrap``).
    """
    if isinstance(model, LoadedModel):
        as_generator(model.model, what)
        return model
    generator = as_generator(model, what)
    manifest = ModelManifest(spec=generator.spec(), io=generator.io, provenance={"name": generator.arch})
    return LoadedModel(generator, manifest)


def load_model(ref: str | os.PathLike[str], arch: str | None = None) -> LoadedModel:
    """Resolve a ``MODEL`` argument (see module docstring) to a generator in eval mode."""
    text = str(ref)
    path = Path(text)
    if path.is_dir():
        loaded = _load_model_dir(path)
    elif path.is_file():
        if not arch:
            raise PocketganError(f"{path}: a checkpoint file needs --arch (e.g. --arch resnet9)")
        model = _from_checkpoint(path, arch)
        manifest = ModelManifest(spec=model.spec(), io=model.io, provenance={"source": str(path), "name": path.stem})
        loaded = LoadedModel(model, manifest)
    elif is_reference(text):
        model = _from_reference(text)
        manifest = ModelManifest(spec=model.spec(), io=model.io, provenance={"source": text, "name": text})
        loaded = LoadedModel(model, manifest)
    else:
        from pocketgan.models.registry import list_generators

        raise PocketganError(
            f"{text}: no such file or directory, and not an architecture ({', '.join(list_generators())}, "
            f"or {FACTORY_SYNTAX.split(' or ')[1]})"
        )
    loaded.model.eval()
    return loaded


def _from_checkpoint(path: Path, arch: str) -> Generator:
    """A checkpoint file's generator: ``stylegan2`` through its importer (config read from the tensors)."""
    name, config = parse_reference(arch)
    if name == "stylegan2":  # rosinality .pt, NVlabs .pkl (restricted unpickler) or a pocketgan state dict
        from pocketgan.models.stylegan2.checkpoints import load_stylegan2_generator

        return load_stylegan2_generator(path, config)
    model = _from_reference(arch)
    load_state_dict_checked(model, read_state_dict(path), str(path))
    return model


def _from_reference(ref: str) -> Generator:
    name, config = parse_reference(ref)
    return build_from_reference(name, config)


def _load_model_dir(path: Path) -> LoadedModel:
    if not (path / MODEL_JSON).exists():
        raise PocketganError(f"{path}: not a model directory (no {MODEL_JSON})")
    manifest = ModelManifest.load(path)
    weights = path / MODEL_WEIGHTS
    if not weights.exists():
        raise PocketganError(f"{path}: model directory has no {MODEL_WEIGHTS}")
    check_weights_sha256(weights, manifest.weights_sha256)
    model = build_generator(manifest.spec)
    load_state_dict_checked(model, read_state_dict(weights), str(weights))
    if isinstance(model, WrappedGenerator):
        model.io = manifest.io  # a wrapped model's I/O is what was saved, whatever its factory declares
    manifest.provenance.setdefault("name", path.name)
    return LoadedModel(model, manifest)


def check_rebuilds(model: Generator, spec: GeneratorSpec) -> None:
    """One line unless ``spec`` (a wrapped model's factory, config and widths) rebuilds ``model``'s state dict shapes.

    Catches, before anything is written, a factory that is not importable, a class recorded without
    the arguments it was built with, and custom pruners used but not registered.
    """
    problem = rebuildable(spec.arch)
    if problem:
        raise PocketganError(f"save_model: cannot record how to rebuild this model: {problem}")
    try:
        load_state_dict_checked(build_generator(spec), model.state_dict(), f"this {type(model).__name__}")
    except PocketganError as exc:
        settings = ", ".join(f"{k}={v!r}" for k, v in spec.config.items())
        raise PocketganError(
            f"save_model: the recorded recipe {spec.arch}({settings}) does not rebuild the model ({exc}); pass the "
            "factory and its arguments to pocketgan.models.wrap(..., factory=, config=), and register custom "
            "pruners with pocketgan.models.register_pruner"
        ) from None


def check_weights_sha256(weights: Path, expected: str | None) -> None:
    """A one-line :class:`ManifestError` naming ``weights`` when its SHA-256 is not the manifest's."""
    if expected is None:
        return
    actual = sha256_file(weights)
    if actual != expected:
        raise ManifestError(
            f"{weights}: sha256 {actual[:12]}… does not match weights_sha256 {expected[:12]}… in {MODEL_JSON} "
            "(the weights were changed or replaced after saving)"
        )


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
        reason = first_line(exc, 200)
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

    ``model`` is a pocketgan generator (a plain ``nn.Module``: wrap it first with
    :func:`pocketgan.models.wrap`). Other files in ``out_dir`` (training checkpoints, logs) are left alone.
    """
    from safetensors.torch import save_file

    model = as_generator(model, "save_model")
    spec = model.spec()  # before anything is written: a model that cannot describe itself writes nothing
    if isinstance(model, WrappedGenerator):
        check_rebuilds(model, spec)
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
        save_file(state, str(tmp), metadata={"arch": spec.arch})
    manifest = ModelManifest(
        spec=spec,
        io=model.io,
        provenance=provenance,
        profile=profile,
        weights_sha256=sha256_file(out_dir / MODEL_WEIGHTS),
    )
    manifest.save(out_dir)
    return manifest
