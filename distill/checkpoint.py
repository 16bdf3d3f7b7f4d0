"""Training checkpoints: written atomically, read back with ``torch.load(weights_only=True)``.

A checkpoint holds only tensors and primitives: the distiller's weights, every
optimizer's and LR scheduler's state, the torch/numpy/python RNG states, the number
of completed steps, the accumulated wall time, the last losses, and the *run
identity* (method, architectures, steps, batch, seed, data...) that decides whether
a later run may resume from it.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pocketgan.core.errors import PocketganError, first_line
from pocketgan.core.fsio import atomic_path

CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class Checkpoint:
    """The resumable state of a run after ``step`` completed steps."""

    step: int
    identity: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizers: dict[str, dict[str, Any]]
    schedulers: dict[str, dict[str, Any]]
    rng: dict[str, Any] = field(default_factory=dict)  # see capture_rng_state
    wall_time: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "identity": self.identity,
            "model": self.model,
            "optimizers": self.optimizers,
            "schedulers": self.schedulers,
            "rng": self.rng,
            "wall_time": self.wall_time,
            "losses": self.losses,
        }

    @classmethod
    def from_payload(cls, payload: Any, where: str) -> Checkpoint:
        keys = ("step", "identity", "model", "optimizers", "schedulers", "rng")
        if not isinstance(payload, dict) or any(k not in payload for k in keys):
            raise PocketganError(f"{where}: not a pocketgan training checkpoint; use a new --out or --no-resume")
        if payload.get("format", CHECKPOINT_FORMAT) > CHECKPOINT_FORMAT:
            raise PocketganError(f"{where}: checkpoint format is newer than this pocketgan understands")
        return cls(
            step=int(payload["step"]),
            identity=dict(payload["identity"]),
            model=dict(payload["model"]),
            optimizers=dict(payload["optimizers"]),
            schedulers=dict(payload["schedulers"]),
            rng=dict(payload["rng"]),
            wall_time=float(payload.get("wall_time", 0.0)),
            losses={k: float(v) for k, v in dict(payload.get("losses") or {}).items()},
        )


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike[str]) -> Path:
    """Write ``checkpoint`` to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(checkpoint.to_payload(), tmp)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint with ``weights_only=True`` (no code is unpickled); errors are one line."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt or foreign file
        reason = first_line(exc, 160)
        raise PocketganError(
            f"{path}: cannot read the training checkpoint ({reason}); use a new --out or --no-resume"
        ) from None
    return Checkpoint.from_payload(payload, str(path))


def check_identity(checkpoint: Checkpoint, identity: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Raise a one-line error naming what differs when ``checkpoint`` belongs to another run."""
    saved, current = _flatten(normalize(checkpoint.identity)), _flatten(normalize(identity))
    differences = [
        f"{key}: {_short(saved.get(key))} in the checkpoint, {_short(current.get(key))} now"
        for key in sorted(set(saved) | set(current))
        if saved.get(key) != current.get(key)
    ]
    if differences:
        more = f" (+{len(differences) - 3} more)" if len(differences) > 3 else ""
        raise PocketganError(
            f"{path} was written by a different run ({'; '.join(differences[:3])}{more}); "
            "use a new --out or --no-resume to start over"
        )


def normalize(value: Any) -> Any:
    """A JSON-shaped copy (tuples become lists, keys strings) so identities compare reliably."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"config": {"lr": 1}}`` → ``{"config.lr": 1}`` so a difference names the exact setting."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and item:
            flat.update(_flatten(item, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = item
    return flat


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if value is not None else "absent"
    return text if len(text) <= 60 else text[:57] + "..."


def capture_rng_state() -> dict[str, Any]:
    """The torch, CUDA, numpy and python RNG states as tensors and primitives."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (str(kind), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                  float(cached)),  # fmt: skip
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so a run is repeatable."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
