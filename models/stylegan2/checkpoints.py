"""Import StyleGAN2 checkpoints: rosinality ``.pt``, NVlabs ``.pkl``, pocketgan state dicts.

``load_stylegan2_generator(path)`` reads the file without running code (``torch.load(weights_only=True)``
or :mod:`pocketgan.models.safe_pickle`), maps its tensor names onto pocketgan's
(:mod:`~pocketgan.models.stylegan2.keymaps`, every tensor used), reads the configuration —
resolution, z/w dimensions, mapping depth, channel widths per layer — from the tensors' names and
shapes, builds the generator and loads it. rosinality's stored ``noises.noise_*`` become the
``noise_const`` buffers, so ``noise_mode="const"`` reproduces ``g_ema([z], noise=stored)``.
Options of ``--arch stylegan2:key=value`` that the tensors determine must agree with them;
the others (``lr_mlp``, ``conv_clamp``) are taken as given.
"""

from __future__ import annotations

import argparse
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pocketgan.core.errors import PocketganError, first_line
from pocketgan.core.registry import did_you_mean
from pocketgan.models.safe_pickle import PersistentRecord, module_tensors, restricted_load
from pocketgan.models.stylegan2.configs import BASE_PER_MULTIPLIER, PRESETS, channels_at, default_widths
from pocketgan.models.stylegan2.discriminator import StyleGAN2Discriminator
from pocketgan.models.stylegan2.generator import StyleGAN2Generator
from pocketgan.models.stylegan2.keymaps import TensorSource, convert

W_AVG_SAMPLES = 4096
"""Latents averaged (seed 0) for ``w_avg`` when a checkpoint stores none (rosinality's ``mean_latent``)."""
GENERATOR_NETS = ("g_ema", "g")
INFERRED = ("size", "z_dim", "w_dim", "n_mlp", "channel_base", "channel_max")


@dataclass
class Checkpoint:
    """The networks of a checkpoint file as state dicts (``g_ema``, ``g``, ``d``), plus what else it says."""

    path: Path
    nets: dict[str, dict[str, Tensor]]
    latent_avg: Tensor | None = None
    kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)  # NVlabs constructor kwargs per net


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a StyleGAN2 checkpoint file, never executing code from it."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return Checkpoint(path, {"g_ema": load_file(str(path))})
    if path.suffix == ".pkl" or not _is_torch_file(path):
        return _from_nvlabs(path, restricted_load(path))
    return _from_torch(path, _torch_load(path))


def _is_torch_file(path: Path) -> bool:
    if zipfile.is_zipfile(path):
        return True
    with path.open("rb") as f:  # legacy torch.save files start with a pickled magic number
        return f.read(12).startswith(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8")


def _torch_load(path: Path) -> Any:
    try:  # rosinality's training checkpoints also pickle their argparse options
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = first_line(exc, 160)
        raise PocketganError(
            f"{path}: not a tensors-only checkpoint ({reason}); pocketgan never unpickles code"
        ) from None
    except Exception as exc:
        reason = first_line(exc, 200)
        raise PocketganError(f"{path}: cannot read the checkpoint ({reason})") from None


def _from_torch(path: Path, obj: Any) -> Checkpoint:
    if not isinstance(obj, dict):
        raise PocketganError(f"{path}: not a checkpoint (a {type(obj).__name__}, not a dict)")
    nets = {k: v for k, v in obj.items() if k in ("g_ema", "g", "d") and isinstance(v, dict)}
    if not nets:
        if not all(isinstance(v, Tensor) for v in obj.values()):
            raise PocketganError(f"{path}: not a state dict of tensors and has no g_ema, g or d")
        nets = {"g_ema": obj}
    latent = obj.get("latent_avg")
    return Checkpoint(path, nets, latent_avg=latent.reshape(-1) if isinstance(latent, Tensor) else None)


def _from_nvlabs(path: Path, obj: Any) -> Checkpoint:
    if not isinstance(obj, dict) or not any(isinstance(obj.get(k), PersistentRecord) for k in ("G_ema", "G", "D")):
        raise PocketganError(f"{path}: not an NVlabs network pickle (no G_ema, G or D network in it)")
    nets: dict[str, dict[str, Tensor]] = {}
    kwargs: dict[str, dict[str, Any]] = {}
    for theirs, ours in (("G_ema", "g_ema"), ("G", "g"), ("D", "d")):
        record = obj.get(theirs)
        if isinstance(record, PersistentRecord):
            nets[ours] = module_tensors(record)
            kwargs[ours] = record.init_kwargs
    return Checkpoint(path, nets, kwargs=kwargs)


# ------------------------------------------------------------------------------------- generator


def load_stylegan2_generator(
    path: str | os.PathLike[str], options: dict[str, Any] | None = None
) -> StyleGAN2Generator:
    """The generator of a checkpoint (``g_ema`` unless ``options["net"] == "g"``), in eval mode.

    ``options``: the ``--arch stylegan2:...`` keys; the tensors determine ``size``, ``z_dim``,
    ``w_dim``, ``n_mlp`` and the widths, so a disagreeing option is one line naming it.
    """
    options = dict(options or {})
    net = str(options.pop("net", "g_ema")).lower()
    if net not in GENERATOR_NETS:
        raise PocketganError(f"stylegan2: net must be one of {', '.join(GENERATOR_NETS)}; got {net!r}")
    ckpt = read_checkpoint(path)
    if net not in ckpt.nets:
        raise PocketganError(f"{ckpt.path}: has no {net} generator (it has {', '.join(ckpt.nets) or 'no networks'})")
    src = convert(ckpt.nets[net], str(ckpt.path), "generator")
    config, widths = infer_generator_config(src)
    config.update(_nvlabs_generator_options(ckpt.kwargs.get(net, {})))
    config = _merge_options(config, options, str(ckpt.path))
    model = StyleGAN2Generator(widths=widths, **config)
    load_converted(model, src)
    _set_w_avg(model, src, ckpt.latent_avg)
    return model.eval()


def infer_generator_config(src: TensorSource) -> tuple[dict[str, Any], dict[str, int] | None]:
    """Config and per-layer widths (``None`` when the config's defaults) from converted tensor shapes."""
    t = src.out
    n_mlp = sum(1 for k in t if k.startswith("mapping.fc") and k.endswith(".weight"))
    if n_mlp == 0 or "mapping.fc0.weight" not in t:
        raise PocketganError(f"{src.where}: no mapping network tensors")
    res = sorted(int(k.split(".")[1][1:]) for k in t if k.startswith("synthesis.b") and k.endswith("conv1.conv.weight"))
    config: dict[str, Any] = dict(
        size=res[-1] if res else 0,
        z_dim=int(t["mapping.fc0.weight"].shape[1]),
        w_dim=int(t[f"mapping.fc{n_mlp - 1}.weight"].shape[0]),
        n_mlp=n_mlp,
    )
    if not res or "synthesis.b4.const.input" not in t:
        raise PocketganError(f"{src.where}: no synthesis network tensors (4×4 constant and convolutions)")
    widths = {key: _width(src, key) for key in default_widths({**config, "channel_base": 1, "channel_max": 1})}
    config.update(_channel_rule(config, widths))
    return config, None if widths == default_widths(config) else widths


def _channel_rule(config: dict[str, Any], widths: dict[str, int]) -> dict[str, int]:
    """The ``channel_base``/``channel_max`` that give the most layers their width (a pruned file: the rest
    are per-layer widths)."""
    synthesis = {k: w for k, w in widths.items() if k.startswith("synthesis.")}
    bases = {w * int(k.split(".")[1][1:]) for k, w in synthesis.items()}
    best = (-1, 0, 0)  # (layers matched, channel_max, channel_base): most matches, then the widest rule
    for base in bases:
        for cmax in set(synthesis.values()):
            rule = default_widths({**config, "channel_base": base, "channel_max": cmax})
            hits = sum(rule[k] == w for k, w in synthesis.items())
            best = max(best, (hits, cmax, base))
    return {"channel_base": best[2], "channel_max": best[1]}


def _width(src: TensorSource, key: str) -> int:
    name = "synthesis.b4.const.input" if key.endswith(".const") else f"{key}.weight"
    if name not in src.out:
        raise PocketganError(f"{src.where}: missing the tensor for {name}")
    shape = src.out[name].shape
    if key.endswith(".const"):
        return int(shape[1])
    return int(shape[1] if key.endswith("conv0.conv") else shape[0])  # conv0 is a ConvTranspose2d (in, out, k, k)


def _nvlabs_generator_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if kwargs.get("c_dim"):
        raise PocketganError(
            f"a class-conditional generator (c_dim={kwargs['c_dim']}); pocketgan imports unconditional ones"
        )
    mapping, synthesis = kwargs.get("mapping_kwargs") or {}, kwargs.get("synthesis_kwargs") or {}
    if "lr_multiplier" in mapping:
        found["lr_mlp"] = float(mapping["lr_multiplier"])
    if "conv_clamp" in synthesis:
        found["conv_clamp"] = synthesis["conv_clamp"]
    return found


def _merge_options(config: dict[str, Any], options: dict[str, Any], where: str) -> dict[str, Any]:
    preset = options.get("config")
    if preset is not None and preset not in PRESETS:
        raise PocketganError(f"stylegan2: unknown config {preset!r}{did_you_mean(str(preset), PRESETS)}")
    given = {**PRESETS.get(preset, {}), **{k: v for k, v in options.items() if k != "config"}}
    if "channel_multiplier" in given:
        given["channel_base"] = int(round(BASE_PER_MULTIPLIER * float(given.pop("channel_multiplier"))))
    for key in INFERRED:
        if key in given and given[key] != config[key]:
            named = key if key in options or preset is None else f"config={preset}"
            raise PocketganError(
                f"{where}: the checkpoint's {key} is {config[key]}, not {given[key]} (from {named}); "
                "drop the option: --arch stylegan2 reads it from the tensors"
            )
    return {**config, **{k: v for k, v in given.items() if k not in INFERRED}}


def load_converted(model: torch.nn.Module, src: TensorSource) -> None:
    """Load converted tensors into ``model``; a missing or mis-shaped tensor is one line naming the file's tensor."""
    state = model.state_dict()
    optional = ("noise_const", "w_avg")
    for key, expected in state.items():
        if key not in src.out:
            if key.endswith(optional):
                continue
            raise PocketganError(f"{src.where}: no tensor for {key}")
        if src.out[key].shape != expected.shape:
            raise PocketganError(
                f"{src.where}: {src.origin.get(key, key)} has shape {tuple(src.tensors[src.origin[key]].shape)}, "
                f"which does not fit {key} {tuple(expected.shape)} of the StyleGAN2 its other tensors describe"
            )
    unexpected = sorted(set(src.out) - set(state))
    if unexpected:
        raise PocketganError(f"{src.where}: {src.origin.get(unexpected[0], unexpected[0])} has no place in the model")
    merged = {k: src.out.get(k, v).to(v.dtype) for k, v in state.items()}
    model.load_state_dict(merged, strict=True)


def _set_w_avg(model: StyleGAN2Generator, src: TensorSource, latent_avg: Tensor | None) -> None:
    if "mapping.w_avg" in src.out:
        return
    if latent_avg is not None and latent_avg.numel() == model.w_dim:
        model.mapping.w_avg.copy_(latent_avg.reshape(-1))
        return
    model.eval()
    with torch.no_grad():
        z = torch.randn(W_AVG_SAMPLES, model.z_dim, generator=torch.Generator().manual_seed(0))
        model.mapping.w_avg.copy_(model.mapping(z).mean(dim=0))


# ------------------------------------------------------------------------------------- discriminator


def load_stylegan2_discriminator(
    path: str | os.PathLike[str], options: dict[str, Any] | None = None
) -> StyleGAN2Discriminator:
    """The discriminator (``d`` / NVlabs ``D``) of a checkpoint, its widths read from the tensors."""
    ckpt = read_checkpoint(path)
    tensors = ckpt.nets.get("d")
    if tensors is None:
        raise PocketganError(f"{ckpt.path}: has no discriminator (d / D)")
    src = convert(tensors, str(ckpt.path), "discriminator")
    config = infer_discriminator_config(src)
    kwargs = ckpt.kwargs.get("d", {})
    if (kwargs.get("epilogue_kwargs") or {}).get("mbstd_group_size"):
        config["mbstd_group"] = int(kwargs["epilogue_kwargs"]["mbstd_group_size"])
    if "conv_clamp" in kwargs:
        config["conv_clamp"] = kwargs["conv_clamp"]
    config.update({k: v for k, v in (options or {}).items() if k in ("mbstd_group", "conv_clamp")})
    model = StyleGAN2Discriminator(**config)
    load_converted(model, src)
    return model.eval()


def infer_discriminator_config(src: TensorSource) -> dict[str, Any]:
    """``size``, ``channel_base``/``channel_max`` and, when they do not give every block's width, ``widths``."""
    t = src.out
    res = sorted(int(k.split(".")[0][1:]) for k in t if k.endswith("conv0.weight"))
    if not res or "b4.conv.weight" not in t:
        raise PocketganError(f"{src.where}: no discriminator blocks")
    size = res[-1]
    widths = {r: int(t[f"b{r}.conv0.weight"].shape[0]) for r in res}
    widths[4] = int(t["b4.conv.weight"].shape[0])
    config: dict[str, Any] = dict(size=size, channel_base=widths[size] * size, channel_max=max(widths.values()))
    if any(channels_at(r, config["channel_base"], config["channel_max"]) != w for r, w in widths.items()):
        config["widths"] = {f"b{r}": w for r, w in widths.items()}
    return config
