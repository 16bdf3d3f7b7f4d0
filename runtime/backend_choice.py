"""Which backend runs which artifact in a benchmark: picked from the artifact, given, or ``auto`` (all).

- no ``--backend``: each artifact's own backend (:func:`~pocketgan.runtime.registry.pick_backend`:
  ``.onnx``/``.ort`` → ``ort``, ``.xml`` → ``openvino``), as the formats table says;
- ``--backend auto``: every installed backend that can run each artifact, all timed interleaved,
  and :func:`fastest_lines` says which is fastest here;
- ``--backend B`` once for all artifacts, or once per artifact in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pocketgan.core.errors import PocketganError
from pocketgan.runtime.registry import backends_for, pick_backend

if TYPE_CHECKING:
    from pocketgan.runtime.bench import BenchResult

AUTO = "auto"


def resolve_backends(
    artifacts: Sequence[str], requested: Sequence[str] | None, offered: Sequence[str]
) -> tuple[list[str], list[str]]:
    """``(artifacts, backends)`` of equal length to load: an artifact appears once per backend under ``auto``."""
    if not requested:
        return list(artifacts), [pick_backend(a) for a in artifacts]
    if list(requested) == [AUTO]:
        pairs = [(a, b) for a in artifacts for b in backends_for(a) if b in offered]
        missing = [a for a in artifacts if not any(p[0] == a for p in pairs)]
        if missing:
            raise PocketganError(f"{missing[0]}: no installed backend can run it (offered: {', '.join(offered)})")
        return [a for a, _ in pairs], [b for _, b in pairs]
    unknown = [b for b in requested if b not in offered]
    if unknown:
        raise PocketganError(f"unknown backend {unknown[0]!r}; choose from {', '.join([*offered, AUTO])}")
    if len(requested) == 1:
        return list(artifacts), list(requested) * len(artifacts)
    if len(requested) != len(artifacts):
        raise PocketganError(f"give --backend once, or once per artifact ({len(artifacts)}); got {len(requested)}")
    return list(artifacts), list(requested)


def fastest_lines(results: Sequence[BenchResult]) -> list[str]:
    """For every artifact timed with several backends: which was fastest (p50) and by how much."""
    lines = []
    for artifact in dict.fromkeys(r.artifact for r in results):
        group = sorted((r for r in results if r.artifact == artifact), key=lambda r: r.latency.p50_ms)
        if len(group) < 2:
            continue
        best, others = group[0], group[1:]
        versus = ", ".join(f"{r.latency.p50_ms / best.latency.p50_ms:.2f}x faster than {r.backend} "
                           f"({r.latency.p50_ms:.2f} ms)" for r in others)  # fmt: skip
        lines.append(f"fastest here for {artifact}: {best.backend} (p50 {best.latency.p50_ms:.2f} ms), {versus}")
    return lines
