"""Typed records of what the pipeline knows: one :class:`ModelRecord` per model, one :class:`FeatureRecord`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pocketgan.models import LoadedModel

#: Record fields that hold paths (stored as text in ``stages.json``).
PATH_FIELDS = ("dir", "out_dir", "artifact")


@dataclass
class ModelRecord:
    """One model of a run: where it was built, and what each later stage measured.

    ``dir`` is the model directory in the cache and ``key`` its cache key; ``out_dir`` is its
    copy in the run directory (profile), ``artifact`` its export; ``metrics`` are the
    :meth:`~pocketgan.distill.metrics.EvalReport.row` figures, ``eval`` the full evaluation and ``curve``
    the FID at each training snapshot (StyleGAN2 runs).
    """

    name: str
    dir: Path
    method: str
    key: str
    arch: str
    out_dir: Path | None = None
    macs: int | None = None
    params: int | None = None
    compression: float | None = None
    artifact: Path | None = None
    parity_max_abs: float | None = None
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    fps: float | None = None
    latency_cv: float | None = None
    compute_limit_pct: float | None = None  # % of the host's compute limit (runtime.efficiency)
    speedup_per_mac_reduction: float | None = None  # against the teacher
    metrics: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)  # FID at the training snapshots: [{"step", "fid"}]
    _loaded: LoadedModel | None = field(default=None, repr=False, compare=False)

    def loaded(self) -> LoadedModel:
        """The model (from the run's copy once profiled, else from the cache), loaded once."""
        if self._loaded is None:
            from pocketgan.models import load_model

            self._loaded = load_model(self.out_dir or self.dir)
        return self._loaded

    def set_loaded(self, loaded: LoadedModel) -> None:
        """Keep ``loaded`` for the later stages (export, eval and the grid reuse it)."""
        self._loaded = loaded

    def row(self) -> dict[str, Any]:
        """The model's line of ``results.json`` and of the report's table."""
        measured = ("macs", "params", "compression", "parity_max_abs", "latency_p50_ms", "latency_p90_ms", "fps",
                    "latency_cv", "compute_limit_pct", "speedup_per_mac_reduction")  # fmt: skip
        return {
            "model": self.name, "method": self.method, "key": self.key, "arch": self.arch,
            **{name: getattr(self, name) for name in measured}, **self.metrics,
            "dir": str(self.out_dir), "artifact": str(self.artifact),
        }  # fmt: skip

    def outputs(self, names: tuple[str, ...]) -> dict[str, Any]:
        """Fields ``names`` as JSON data."""
        return {name: _to_json(name, getattr(self, name)) for name in names}

    def restore(self, values: dict[str, Any]) -> None:
        """Set the fields in ``values`` (as :meth:`outputs` wrote them)."""
        known = {f.name for f in dataclasses.fields(self)}
        for name, value in values.items():
            if name in known:
                setattr(self, name, Path(value) if name in PATH_FIELDS and value is not None else value)


def _to_json(name: str, value: Any) -> Any:
    return str(value) if name in PATH_FIELDS and value is not None else value


@dataclass
class FeatureRecord:
    """The feature network of the perceptual losses and FID/KID.

    ``ref`` is what :func:`~pocketgan.distill.features.load_feature_network` is given (a name or a
    weights file), ``name`` labels the metrics, ``key`` identifies its content (cache keys record it).
    """

    ref: str
    name: str
    key: str
