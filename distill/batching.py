"""Deterministic batches for the training loop: step ``k`` of a seed always sees the same samples.

That is what makes a resumed run match an uninterrupted one exactly, and what lets ranks under
``torchrun`` take contiguous shards of one global batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from pocketgan.core.errors import PocketganError
from pocketgan.distill.distributed import DistributedContext

IMAGE_SAMPLES = 4  # rows of the TensorBoard image grid


class BatchDrawer:
    """Deterministic batches: one permutation per epoch from a generator seeded by ``(seed, epoch)``.

    The samples form an endless stream (epoch after epoch); global batch ``k`` is
    stream positions ``[k·B, (k+1)·B)`` and each rank takes its contiguous shard.
    ``dataset.set_epoch(epoch)`` is called before each item when the dataset has it,
    so augmentation is a function of (seed, epoch, index) too.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.size = len(dataset)  # type: ignore[arg-type]
        if self.size == 0:
            raise PocketganError("the training dataset is empty")
        self.seed = seed
        self._permutations: dict[int, torch.Tensor] = {}

    def permutation(self, epoch: int) -> torch.Tensor:
        """The order of the samples in ``epoch`` (the current and the previous epoch are kept)."""
        if epoch not in self._permutations:
            state = np.random.SeedSequence([self.seed, epoch]).generate_state(2, dtype=np.uint32)
            generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
            self._permutations = {e: p for e, p in self._permutations.items() if e >= epoch - 1}
            self._permutations[epoch] = torch.randperm(self.size, generator=generator)
        return self._permutations[epoch]

    def item(self, position: int) -> dict[str, Any]:
        """The sample at ``position`` of the endless stream."""
        epoch, offset = divmod(position, self.size)
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
        return self.dataset[int(self.permutation(epoch)[offset])]

    def batch(self, step: int, global_batch: int, context: DistributedContext) -> dict[str, Any]:
        """This rank's shard of global batch ``step``, collated."""
        offset, size = context.shard(global_batch)
        start = step * global_batch + offset
        return default_collate([self.item(p) for p in range(start, start + size)])

    def samples(self, count: int = IMAGE_SAMPLES) -> dict[str, torch.Tensor]:
        """The first ``count`` items of epoch 0 (the tensors only), fixed for the whole run: the image grid's rows."""
        items = [self.item(position) for position in range(min(count, self.size))]
        return {k: v for k, v in default_collate(items).items() if isinstance(v, torch.Tensor)}


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move a batch's tensors to ``device`` (other entries, like names, stay)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def latent_inputs(seed: int, step: int, global_batch: int, context: DistributedContext, *, z_dim: int,
                  count: int = 1) -> dict[str, torch.Tensor]:  # fmt: skip
    """Standard-normal latents ``z`` (this rank's shard, ``(B, count, z_dim)``) and a ``noise_seed`` for step ``step``.

    Both are functions of ``(seed, step)`` only, like the image batches: a resumed run draws the same latents,
    and a distiller that seeds its generators' noise with ``noise_seed`` gives teacher and student the same
    noise. Each rank gets its own noise seed (its shard of the global batch has its own samples).
    """
    state = np.random.SeedSequence([seed, step, 0x5A7E47]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    z = torch.randn(global_batch, count, z_dim, generator=generator)
    noise_seed = int(torch.randint(0, 2**62, (1,), generator=generator)) + context.rank
    offset, size = context.shard(global_batch)
    return {"z": z[offset : offset + size], "noise_seed": torch.tensor(noise_seed, dtype=torch.int64)}
