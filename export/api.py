"""``export_model``: build an artifact with a registered exporter, check it against PyTorch, publish it.

Everything is built in a hidden scratch directory inside the output directory; the artifact
is renamed into place (then its sidecar written) only after the parity check passed, so a
failed export leaves no artifact behind and an earlier export in the same place untouched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pocketgan.core.errors import PocketganError
from pocketgan.core.progress import ProgressCallback
from pocketgan.export.calibration import is_real
from pocketgan.export.formats import check_options, format_spec
from pocketgan.export.gate import GateResult, parity_gate
from pocketgan.export.job import DEFAULT_SIZE, BuiltArtifact, ExportJob, ExportOptions
from pocketgan.export.latent import check_latent_export, latent_output_size
from pocketgan.export.parity import ParityRule
from pocketgan.export.progress import StepProgress
from pocketgan.export.registry import Exporter, get_exporter
from pocketgan.core.contract import ArtifactManifest, sidecar_path
from pocketgan.core.coverage import SIDECAR_KEY as COVERAGE_KEY
from pocketgan.core.fsio import sha256_file
from pocketgan.models import Generator, LoadedModel


def export_model(
    loaded: LoadedModel,
    fmt: str,
    out_dir: str | os.PathLike[str],
    options: ExportOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> ArtifactManifest:
    """Export ``loaded`` as format ``fmt`` into ``out_dir`` and return the sidecar written beside it.

    Raises :class:`~pocketgan.core.errors.ParityError` (nothing written) when the artifact disagrees
    with PyTorch beyond the precision's rule (see :mod:`pocketgan.export.parity`), measured with this
    host's kernels (:mod:`pocketgan.export.gate`). ``progress`` receives each step (tracing,
    simplifying, calibration, parity, ...) as a :class:`~pocketgan.core.progress.ProgressTask`.
    """
    from pocketgan.models import as_loaded

    loaded = as_loaded(loaded, "export_model")  # a wrapped generator is fine; a plain nn.Module: "wrap it"
    options = options or ExportOptions()
    exporter = get_exporter(fmt)
    options.validate(exporter)
    check_latent_export(loaded.model, exporter.name, options)
    check_options(format_spec(exporter.name), options)
    size = resolve_size(loaded.model, options.size)
    rule = ParityRule.for_precision(options.precision, options.atol, options.min_psnr_db)
    with (
        _output_directory(Path(out_dir)) as directory,
        tempfile.TemporaryDirectory(prefix=".pocketgan-export-", dir=directory) as scratch,
        StepProgress(progress) as steps,
    ):
        job = ExportJob(loaded, options, size, Path(scratch), steps)
        built = exporter.build(job, Path(scratch) / exporter.artifact)
        if options.precision == "int8":  # the bar depends on what it was calibrated on (pocketgan.export.parity)
            rule = ParityRule.for_precision("int8", options.atol, options.min_psnr_db,
                                            real_calibration=is_real(job.calibration_source))  # fmt: skip
        gate = parity_gate(job, built, rule, f"the {exporter.name} {options.precision} export")
        sidecar = _sidecar(job, exporter, built, gate)
        steps.step("writing")
        _publish(built.path, directory / exporter.artifact, sidecar, built.companions)
    return sidecar


def resolve_size(model: Generator, size: tuple[int, int] | None) -> tuple[int, int]:
    """``size`` (height, width), else the model's fixed size, else 256×256; checked against the architecture.

    A latent-input generator's size is the size of the images it makes (``size``, if given, must be it).
    """
    if model.io.is_latent:
        return latent_output_size(model, size)
    height, width = size or model.io.fixed_size or DEFAULT_SIZE
    model.check_input_size(int(height), int(width))
    return int(height), int(width)


def artifact_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a directory artifact (``.mlpackage``): its relative paths and contents, sorted."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(item.relative_to(path).as_posix().encode() + b"\0")
        digest.update(sha256_file(item).encode())
    return digest.hexdigest()


def _sidecar(job: ExportJob, exporter: Exporter, built: BuiltArtifact, gate: GateResult) -> ArtifactManifest:
    extra: dict[str, object] = {"input_size": list(job.size), **job.latent_extra(), **gate.extra, **built.extra}
    if built.companions:
        extra["companions"] = {p.name: sha256_file(p) for p in built.companions}
    if built.rewrites is not None:
        extra["rewrites"] = dict(built.rewrites)
    if built.coverage is not None:
        extra[COVERAGE_KEY] = built.coverage.to_dict()
    return ArtifactManifest(
        format=exporter.name,
        file=exporter.artifact,
        sha256=artifact_sha256(built.path),
        inputs=job.inputs(),
        outputs=job.outputs(),
        io=job.artifact_io(),
        precision=job.options.precision,
        exporter=built.exporter,
        opset=built.opset,
        parity=gate.parity,
        source=job.loaded.manifest.to_dict(),
        extra=extra,
    )


def _publish(staged: Path, final: Path, sidecar: ArtifactManifest, companions: tuple[Path, ...] = ()) -> None:
    """Rename the companions and the artifact into place, then write its sidecar (a sidecar always matches)."""
    sidecar_path(final).unlink(missing_ok=True)
    for companion in companions:
        os.replace(companion, final.with_name(companion.name))
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    elif staged.is_dir() and final.exists():
        final.unlink()
    os.replace(staged, final)
    sidecar.save(final)


@contextmanager
def _output_directory(out_dir: Path) -> Iterator[Path]:
    """Create ``out_dir`` if needed; remove it again if it was created and the export failed."""
    if out_dir.exists() and not out_dir.is_dir():
        raise PocketganError(f"{out_dir}: exists and is not a directory")
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PocketganError(f"{out_dir}: cannot create the output directory ({exc.strerror})") from None
    try:
        yield out_dir
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
