"""How pocketgan sets an ncnn ``Option`` (standard library only): shared by the ncnn exporter's parity check
and the ``ncnn`` runtime backend, so the export is checked exactly as it will run."""

from __future__ import annotations

from typing import Any

FP16_FLAGS = ("use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed")


def configure_ncnn(opt: Any, *, fp16: bool, threads: int | None = None) -> None:
    """ncnn ``Option``: fp16 storage, arithmetic and packing as the artifact's precision says (ncnn turns fp16
    storage on by default where the CPU has it); bf16 and Vulkan off; ``threads`` if given."""
    for flag in FP16_FLAGS:
        setattr(opt, flag, fp16)
    opt.use_bf16_storage = False
    opt.use_vulkan_compute = False
    if threads:
        opt.num_threads = int(threads)
