"""A run's metrics over training, one JSON object per line: ``OUT/train/metrics.jsonl``.

Distillers report values that are not losses (a StyleGAN2 run's discriminator logits on real and
fake images) through :meth:`~pocketgan.distill.base.Distiller.pop_metrics`; the training loop appends
them here with their step (rank 0), and the report plots them. A resumed run first drops the lines
written after its checkpoint, so the file reads as if the run had never stopped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

METRICS_LOG = "metrics.jsonl"


class RunLog:
    """Appends ``{"step": k, **values}`` lines to ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def truncate_after(self, step: int) -> None:
        """Keep only the lines of steps ``<= step`` (``0``: start an empty log)."""
        kept = [entry for entry in read_log(self.path) if entry.get("step", 0) <= step]
        if not kept and not self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(entry, sort_keys=True) + "\n" for entry in kept))

    def append(self, step: int, values: dict[str, float]) -> None:
        """Add one line for ``step``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps({"step": step, **{k: float(v) for k, v in values.items()}}, sort_keys=True) + "\n")


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The entries of a metrics log (``[]`` when there is none; a torn last line is skipped)."""
    entries = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def read_run_log(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The metrics a training run into ``out_dir`` logged (``OUT/train/metrics.jsonl``), oldest first."""
    from pocketgan.distill.resume import TRAIN_DIR

    return read_log(Path(out_dir) / TRAIN_DIR / METRICS_LOG)


SNAPSHOT_DIR = "snapshots"


def snapshot_path(out_dir: str | os.PathLike[str], step: int) -> Path:
    """``OUT/train/snapshots/step-000123.safetensors``: the saved generator's weights after ``step`` steps."""
    from pocketgan.distill.resume import TRAIN_DIR

    return Path(out_dir) / TRAIN_DIR / SNAPSHOT_DIR / f"step-{step:06d}.safetensors"


def write_snapshot(module: Any, path: str | os.PathLike[str]) -> Path:
    """``module``'s state dict as a safetensors file, written atomically (RNG and training state untouched)."""
    from safetensors.torch import save_file

    from pocketgan.core.fsio import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
    return path


def list_snapshots(out_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """``[(step, path)]`` of a run's generator snapshots (option ``snapshot_every``), oldest first.

    Each file is a state dict of the model directory's generator: rebuild it with
    ``load_model(out_dir)`` and ``load_state_dict(safetensors.torch.load_file(path))``.
    """
    folder = snapshot_path(out_dir, 0).parent
    found = []
    for path in sorted(folder.glob("step-*.safetensors")) if folder.is_dir() else []:
        try:
            found.append((int(path.stem.removeprefix("step-")), path))
        except ValueError:
            continue
    return found
