"""Data-parallel training under ``torchrun``, and device selection.

``torchrun --nproc_per_node N -m pocketgan distill ...`` sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`distributed_session` then joins the process
group (NCCL on CUDA, gloo on CPU), and the trainer uses the resulting
:class:`DistributedContext` to broadcast rank 0's initial weights, average
gradients (``Distiller.grad_sync``), keep buffers (BatchNorm statistics) in step,
and let only rank 0 write checkpoints, logs, progress and the model directory.
The command line does not change. Multi-node runs need ``--out`` on a shared
filesystem (every rank reads the checkpoint when resuming).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from pocketgan.core.errors import PocketganError

T = TypeVar("T")


def resolve_device(name: str | None = "auto", local_rank: int = 0) -> torch.device:
    """``auto``/``None``: ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; ``cpu``, ``cuda``, ``cuda:K``."""
    text = (name or "auto").strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise PocketganError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        index = local_rank if text == "cuda" else _device_index(text, name)
        if index >= torch.cuda.device_count():
            raise PocketganError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device("cuda", index)
    raise PocketganError(f"--device {name}: expected auto, cpu, cuda or cuda:N")


def _device_index(text: str, name: str | None) -> int:
    try:
        return int(text.partition(":")[2])
    except ValueError:
        raise PocketganError(f"--device {name}: expected cuda:N with an integer N") from None


@dataclass
class DistributedContext:
    """Where this process runs and how it talks to the others (a single process by default)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and shows progress."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def current(cls, device: str | torch.device | None = None) -> DistributedContext:
        """The context of an already initialised process group, or a single process."""
        if dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
            local = int(os.environ.get("LOCAL_RANK", rank))
        else:
            rank, world, local = 0, 1, 0
        if not isinstance(device, torch.device):
            device = resolve_device(device, local)
        return cls(rank=rank, world_size=world, local_rank=local, device=device)

    def shard(self, global_batch: int) -> tuple[int, int]:
        """``(offset, size)`` of this rank's part of a global batch."""
        if global_batch % self.world_size:
            raise PocketganError(
                f"--batch {global_batch} is not divisible by the {self.world_size} processes; "
                "pick a multiple of --nproc_per_node"
            )
        size = global_batch // self.world_size
        return self.rank * size, size

    def broadcast_module(self, module: nn.Module, src: int = 0) -> None:
        """Copy ``src``'s parameters and buffers to every rank."""
        if self.is_distributed:
            tensors = [t.data for t in (*module.parameters(), *module.buffers())]
            _coalesced(tensors, lambda flat: dist.broadcast(flat, src))

    def sync_buffers(self, module: nn.Module, src: int = 0) -> None:
        """Broadcast buffers (BatchNorm running statistics) from ``src``, as DDP does every step."""
        if self.is_distributed:
            _coalesced(list(module.buffers()), lambda flat: dist.broadcast(flat, src))

    def average_gradients(self, module: nn.Module) -> None:
        """All-reduce the gradients of ``module`` and divide by the world size (``Distiller.grad_sync``)."""
        if not self.is_distributed:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]

        def reduce(flat: torch.Tensor) -> None:
            dist.all_reduce(flat)
            flat.div_(self.world_size)

        _coalesced(grads, reduce)

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on at least one (e.g. a stop request)."""
        if not self.is_distributed:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def main_first(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0, then on the other ranks (so they reuse what rank 0 cached)."""
        if self.is_main:
            result = fn()
        self.barrier()
        if not self.is_main:
            result = fn()
        return result


def _coalesced(tensors: Iterable[torch.Tensor], collective: Callable[[torch.Tensor], None]) -> None:
    """Run ``collective`` once per (device, dtype) group on a flat copy, then write the result back."""
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault((tensor.device, tensor.dtype), []).append(tensor)
    with torch.no_grad():
        for group in groups.values():
            flat = torch.cat([t.reshape(-1) for t in group])
            collective(flat)
            offset = 0
            for tensor in group:
                tensor.copy_(flat[offset : offset + tensor.numel()].view_as(tensor))
                offset += tensor.numel()


def launched_by_torchrun() -> bool:
    """True when ``WORLD_SIZE`` says this process is one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """False on the ranks other than 0 of a torchrun launch (they should stay quiet)."""
    return int(os.environ.get("RANK", "0")) == 0


@contextmanager
def distributed_session(device: str | None = "auto") -> Iterator[DistributedContext]:
    """Join the process group when launched by torchrun (else a single process); leave it on exit.

    Ends with a barrier on success, so no rank exits while rank 0 is still writing.
    """
    created = False
    if launched_by_torchrun() and not dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device_obj = resolve_device(device, local_rank)
        if device_obj.type == "cuda":
            torch.cuda.set_device(device_obj)
        dist.init_process_group(backend="nccl" if device_obj.type == "cuda" else "gloo")
        created = True
    try:
        context = DistributedContext.current(device)
        yield context
        context.barrier()
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()
