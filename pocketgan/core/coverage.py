"""Delegation coverage: how much of an artifact's graph the accelerated backend runs, as its own inspector says.

A phone runtime takes the parts of a graph its fast backend supports (XNNPACK, a vendor NPU, ncnn's
native layers) and leaves the rest to a slow fallback (the portable CPU kernels, a framework op). Every
phone exporter fills one :class:`DelegationCoverage` from the runtime's own report (ExecuTorch's
delegation info, LiteRT's interpreter, the layers of an ncnn ``.param``) and records it in the sidecar
under :data:`SIDECAR_KEY`; ``pocketgan export`` shows it in its summary table and backends read it back
with :func:`coverage_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pocketgan.core.errors import ManifestError

#: The sidecar's ``extra`` key holding the record.
SIDECAR_KEY = "coverage"
#: What the counts count: operators (ExecuTorch, LiteRT), layers (ncnn) or graph nodes (ONNX).
UNITS = ("ops", "layers", "nodes")
#: How many fallback op types :meth:`DelegationCoverage.describe` names before "+N more".
DESCRIBED_OPS = 3


@dataclass(frozen=True)
class DelegationCoverage:
    """``delegated`` of ``delegated + fallback`` ``unit`` ran inside ``backend``; ``by_op`` counts the fallback
    ones by type; ``islands`` is the number of delegated subgraphs (``None`` when the inspector has no such
    notion); ``source`` names the inspector that said so (``"executorch get_delegation_info"``)."""

    backend: str
    delegated: int
    fallback: int
    unit: str = "ops"
    islands: int | None = None
    by_op: Mapping[str, int] = field(default_factory=dict, hash=False)
    source: str = ""

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"coverage unit must be one of {', '.join(UNITS)}; got {self.unit!r}")
        counts = [self.delegated, self.fallback, *([] if self.islands is None else [self.islands]), *self.by_op.values()]
        if any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in counts):
            raise ValueError(f"coverage counts must be non-negative integers; got {counts}")
        if sum(self.by_op.values()) > self.fallback:
            raise ValueError(f"coverage by_op counts {dict(self.by_op)} exceed the {self.fallback} fallback {self.unit}")
        object.__setattr__(self, "by_op", dict(self.by_op))

    @property
    def total(self) -> int:
        """Every counted op (delegated + fallback)."""
        return self.delegated + self.fallback

    @property
    def fraction(self) -> float:
        """The delegated share, 0..1 (0.0 for an empty graph)."""
        return self.delegated / self.total if self.total else 0.0

    def short(self) -> str:
        """``"118/120 ops"``: the summary table's cell."""
        return f"{self.delegated}/{self.total} {self.unit}"

    def describe(self) -> str:
        """One line: ``"XNNPACK 118/120 ops in 3 islands, 2 fallback: aten.reflection_pad2d ×2"``."""
        islands = "" if self.islands is None else f" in {self.islands} island{'s' * (self.islands != 1)}"
        head = f"{self.backend} {self.short()}{islands}"
        if not self.fallback:
            return f"{head}, no fallback"
        ranked = sorted(self.by_op.items(), key=lambda item: (-item[1], item[0]))
        named = [f"{op} ×{count}" for op, count in ranked[:DESCRIBED_OPS]]
        if len(ranked) > DESCRIBED_OPS:
            named.append(f"+{len(ranked) - DESCRIBED_OPS} more")
        return f"{head}, {self.fallback} fallback" + (f": {', '.join(named)}" if named else "")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to the sidecar (``fraction`` included for readers; ignored when read back)."""
        return {"backend": self.backend, "delegated": self.delegated, "fallback": self.fallback, "unit": self.unit,
                "islands": self.islands, "by_op": dict(self.by_op), "source": self.source,
                "fraction": round(self.fraction, 4)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any, source: str = "coverage record") -> DelegationCoverage:
        """The record from its JSON form; a one-line :class:`ManifestError` when it is malformed."""
        if not isinstance(data, dict):
            raise ManifestError(f"{source}: must be a JSON object")
        try:
            return cls(str(data["backend"]), data["delegated"], data["fallback"], str(data.get("unit", "ops")),
                       data.get("islands"), dict(data.get("by_op") or {}), str(data.get("source", "")))  # fmt: skip
        except KeyError as exc:
            raise ManifestError(f"{source}: missing {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"{source}: {exc}") from None


def coverage_of(extra: Mapping[str, Any]) -> DelegationCoverage | None:
    """The record in a sidecar's ``extra`` (``ArtifactManifest.extra``), or ``None`` when it has none."""
    data = extra.get(SIDECAR_KEY)
    return None if data is None else DelegationCoverage.from_dict(data, f"sidecar {SIDECAR_KEY!r}")
