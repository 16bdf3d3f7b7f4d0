"""Latents at the runtime's door: seeds to ``z``, checks, and the feed of a latent-input artifact.

A seed ``s`` becomes ``z = numpy.random.default_rng(s).standard_normal(z_dim)`` (float32), so an
image depends on its seed alone, not on the batch it is generated in; when the artifact takes its
noise maps as inputs (exported with ``--noise-input``), the same generator then draws them. The
truncation ψ is an input only when the artifact was exported with ``--truncation-input``; otherwise
it was baked in at export and the sidecar's ``io.truncation`` says at what value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pocketgan.core.contract import IOSpec, TensorInfo
from pocketgan.core.errors import PocketganError

TRUNCATION_INPUT = "truncation"  # the names pocketgan.export.latent gives the extra inputs
NOISE_INPUT_PREFIX = "noise_"
Feed = dict[str, np.ndarray]


def seed_latents(seeds: int | Sequence[int], z_dim: int) -> tuple[np.ndarray, list[np.random.Generator]]:
    """``(len(seeds), z_dim)`` standard-normal latents, one per seed, and each seed's generator (for noise)."""
    seeds = list(seeds) if isinstance(seeds, (list, tuple, np.ndarray, range)) else [seeds]
    if not seeds:
        raise PocketganError("generate: give at least one seed")
    bad = [s for s in seeds if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0]
    if bad:
        raise PocketganError(f"generate: seeds are non-negative integers; got {bad[0]!r}")
    rngs = [np.random.default_rng(int(s)) for s in seeds]
    return np.stack([rng.standard_normal(z_dim, dtype=np.float32) for rng in rngs]), rngs


def check_latents(z: np.ndarray, z_dim: int, name: str) -> np.ndarray:
    """``z`` as a float32 ``(N, z_dim)`` array (one latent of ``z_dim`` values allowed), or one line why not."""
    array = np.asarray(z)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != z_dim or array.shape[0] < 1:
        raise PocketganError(
            f"{name} takes latents z of {z_dim} values (shape (N, {z_dim})); got shape {tuple(np.shape(z))}"
        )
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise PocketganError(f"{name}: the latents z must be finite numbers")
    return np.ascontiguousarray(array, dtype=np.float32)


def truncation_feed(inputs: Sequence[TensorInfo], io: IOSpec, truncation: float | None, name: str) -> Feed:
    """The ``truncation`` input's value (ψ, default the export's) when the artifact has one; else checks that
    ``truncation`` asks for nothing but the ψ baked in at export."""
    if truncation is not None and not np.isfinite(truncation):
        raise PocketganError(f"{name}: truncation must be a finite number; got {truncation}")
    if any(t.name == TRUNCATION_INPUT for t in inputs):
        psi = io.truncation if truncation is None else float(truncation)
        return {TRUNCATION_INPUT: np.array([psi], dtype=np.float32)}
    if truncation is not None and not np.isclose(float(truncation), io.truncation):
        raise PocketganError(
            f"{name}: truncation was baked in at export (ψ = {io.truncation:g}), so it cannot be {truncation:g} here; "
            "re-export with --truncation-input to choose it at run time"
        )
    return {}


def noise_feed(inputs: Sequence[TensorInfo], rngs: Sequence[np.random.Generator], name: str) -> Feed:
    """Standard-normal noise for every ``noise_*`` input: one draw per sample from that sample's generator."""
    feed: Feed = {}
    for tensor in (t for t in inputs if t.name.startswith(NOISE_INPUT_PREFIX)):
        shape = tensor.shape[1:]
        if not all(isinstance(d, int) for d in shape):
            raise PocketganError(f"{name}: noise input {tensor.name} has a dynamic shape {tensor.shape}")
        draws = [rng.standard_normal(shape, dtype=np.float32) for rng in rngs]  # type: ignore[arg-type]
        feed[tensor.name] = np.stack(draws)
    return feed


def latent_feeds(
    inputs: Sequence[TensorInfo], io: IOSpec, z: np.ndarray, rngs: Sequence[np.random.Generator],
    truncation: float | None, name: str,
) -> Feed:  # fmt: skip
    """The whole feed for latents ``z``: ``{z input: z, truncation: [ψ], noise_i: ...}`` as the artifact takes it."""
    known = {inputs[0].name, TRUNCATION_INPUT}
    unknown = [t.name for t in inputs[1:] if t.name not in known and not t.name.startswith(NOISE_INPUT_PREFIX)]
    if unknown:
        raise PocketganError(
            f"{name}: unexpected input {unknown[0]!r} beside the latent (expected truncation or noise_*)"
        )
    return {inputs[0].name: z, **truncation_feed(inputs, io, truncation, name), **noise_feed(inputs, rngs, name)}


def split_feed(feed: Feed, batched: Sequence[str], size: int) -> list[Feed]:
    """``feed`` in chunks of ``size`` samples (the last padded by repeating its last sample); unbatched inputs as is."""
    count = len(feed[batched[0]])
    chunks = []
    for start in range(0, count, size):
        chunk = {}
        for key, value in feed.items():
            if key in batched:
                part = value[start : start + size]
                pad = size - len(part)
                chunk[key] = np.concatenate([part, np.repeat(part[-1:], pad, axis=0)]) if pad else part
            else:
                chunk[key] = value
        chunks.append(chunk)
    return chunks
