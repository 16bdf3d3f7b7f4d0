"""StyleGAN2 configurations: named presets, channel widths per resolution, per-layer width keys.

Widths follow NVlabs' rule ``min(channel_base // resolution, channel_max)``; rosinality's
``channel_multiplier`` m is ``channel_base = 16384 * m`` (m=2: 512 channels up to 64 px, then halving;
m=1 is stylegan2-ada's ``paper256``: 512 up to 32 px, 256 at 64, 128 at 128, 64 at 256).

Per-layer width keys (``GeneratorSpec.widths``; every one a module name of the generator):

- ``synthesis.b4.const``: channels of the constant input;
- ``synthesis.b{r}.conv0.conv`` (r >= 8, the upsampling conv) and ``synthesis.b{r}.conv1.conv``:
  output channels of each modulated convolution;
- ``mapping.fc{i}`` for ``i < n_mlp - 1``: hidden widths of the mapping network (the last is ``w_dim``).

The affine (style) layers, the toRGB inputs and the next layer's inputs follow from these.
"""

from __future__ import annotations

import math
from typing import Any

from pocketgan.core.errors import PocketganError
from pocketgan.core.registry import did_you_mean

MIN_SIZE, MAX_SIZE = 8, 1024
BASE_PER_MULTIPLIER = 16384

#: Named configurations (``stylegan2:size=256,config=paper256``); explicit keys override them.
PRESETS: dict[str, dict[str, Any]] = {
    # stylegan2-ada-pytorch train.py cfg_specs: fmaps=0.5 -> channel_base 16384, map=8, conv_clamp=256.
    "paper256": dict(channel_base=16384, channel_max=512, n_mlp=8, z_dim=512, w_dim=512, conv_clamp=256),
    "paper512": dict(channel_base=32768, channel_max=512, n_mlp=8, z_dim=512, w_dim=512, conv_clamp=256),
    # Config F as rosinality/stylegan2-pytorch trains it (channel_multiplier=2, no clamping).
    "stylegan2": dict(channel_base=32768, channel_max=512, n_mlp=8, z_dim=512, w_dim=512, conv_clamp=None),
}

DEFAULTS: dict[str, Any] = dict(
    size=256, z_dim=512, w_dim=512, n_mlp=8, channel_base=32768, channel_max=512, lr_mlp=0.01, conv_clamp=None
)


def resolve_config(
    arch: str, *, config: str | None = None, channel_multiplier: float | None = None, **given: Any
) -> dict[str, Any]:
    """The full generator/discriminator config from a preset, ``channel_multiplier`` and explicit keys."""
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        known = [*DEFAULTS, "config", "channel_multiplier"]
        raise PocketganError(f"{arch}: unknown option {unknown[0]!r}{did_you_mean(unknown[0], known)}")
    merged = dict(DEFAULTS)
    if config is not None:
        if config not in PRESETS:
            raise PocketganError(f"{arch}: unknown config {config!r}{did_you_mean(str(config), PRESETS)}")
        merged.update(PRESETS[config])
    if channel_multiplier is not None:
        if "channel_base" in given:
            raise PocketganError(f"{arch}: give channel_multiplier or channel_base, not both")
        merged["channel_base"] = int(round(BASE_PER_MULTIPLIER * float(channel_multiplier)))
    merged.update(given)
    check_config(arch, merged)
    return merged


def check_config(arch: str, config: dict[str, Any]) -> None:
    """One line naming the first impossible value."""
    size = config["size"]
    if not isinstance(size, int) or size < MIN_SIZE or size > MAX_SIZE or size & (size - 1):
        raise PocketganError(f"{arch}: size must be a power of two from {MIN_SIZE} to {MAX_SIZE}; got {size!r}")
    for key in ("z_dim", "w_dim", "n_mlp", "channel_base", "channel_max"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise PocketganError(f"{arch}: {key} must be a positive integer; got {config[key]!r}")
    if not config["lr_mlp"] > 0:
        raise PocketganError(f"{arch}: lr_mlp must be positive; got {config['lr_mlp']!r}")
    clamp = config["conv_clamp"]
    if clamp is not None and not clamp > 0:
        raise PocketganError(f"{arch}: conv_clamp must be positive or null; got {clamp!r}")


def resolutions(size: int) -> list[int]:
    """Block resolutions 4, 8, ..., ``size``."""
    return [2**i for i in range(2, int(math.log2(size)) + 1)]


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """NVlabs' width of a block at ``resolution``."""
    return max(1, min(channel_base // resolution, channel_max))


def default_widths(config: dict[str, Any]) -> dict[str, int]:
    """Every per-layer width key of a generator with ``config``, at its unpruned value."""
    base, cmax = config["channel_base"], config["channel_max"]
    widths = {f"mapping.fc{i}": config["w_dim"] for i in range(config["n_mlp"] - 1)}
    widths["synthesis.b4.const"] = channels_at(4, base, cmax)
    for res in resolutions(config["size"]):
        if res > 4:
            widths[f"synthesis.b{res}.conv0.conv"] = channels_at(res, base, cmax)
        widths[f"synthesis.b{res}.conv1.conv"] = channels_at(res, base, cmax)
    return widths


def num_ws(size: int) -> int:
    """How many w vectors the synthesis network takes (one per modulated conv, plus the last toRGB)."""
    return 2 * int(math.log2(size)) - 2
