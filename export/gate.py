"""The parity gate: run the built artifact on the parity inputs, compare with PyTorch, decide.

The gate runs the artifact as a deployment runs it, with this host's kernels (for ONNX:
onnxruntime's default graph optimizations, i.e. the fused int8 kernels). Where the format also
offers reference math (:attr:`~pocketgan.export.job.BuiltArtifact.reference_run`: an int8 QDQ
graph run unfused), both are measured and recorded, and a failure on the host's kernels that the
reference math does not share is reported as such, naming the host's ISA and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pocketgan.core.contract import Parity
from pocketgan.core.hostinfo import HostISA, host_isa
from pocketgan.export.job import BuiltArtifact, ExportJob, Runner
from pocketgan.export.parity import ParityRule, check_parity, measure_parity
from pocketgan.export.samples import SYNTHETIC_GRID_CELLS


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict: ``parity`` on the host's kernels (None: not runnable here) and sidecar facts."""

    parity: Parity | None
    extra: dict[str, Any]


def parity_gate(job: ExportJob, built: BuiltArtifact, rule: ParityRule, what: str) -> GateResult:
    """Measure ``built`` against PyTorch; raise :class:`~pocketgan.core.errors.ParityError` if it fails ``rule``."""
    if built.run is None:
        return GateResult(None, {"parity": f"not measured on this host: {built.not_run_reason}"})
    value_range = job.loaded.manifest.io.value_range
    parity = measure_parity(run_on_samples(job, built.run), job.reference, value_range, rule)
    isa = host_isa()
    extra: dict[str, Any] = {"parity_rule": rule.describe(), "parity_inputs": describe_inputs(job),
                             "parity_host": isa.to_dict()}  # fmt: skip
    reference = None
    if built.reference_run is not None:
        outputs = run_on_samples(job, built.reference_run, "parity vs PyTorch (reference math)")
        reference = measure_parity(outputs, job.reference, value_range, rule)
        extra["parity_kernels"] = {"host_kernels": _figures(parity), "reference_math": _figures(reference)}
    check_parity(parity, rule, what, reference=reference, host=isa.label, hint=kernel_hint(job, isa))
    return GateResult(parity, extra)


def run_on_samples(job: ExportJob, run: Runner, description: str = "parity vs PyTorch") -> np.ndarray:
    """``run``'s outputs on the parity samples: one batch if the artifact's batch is dynamic, else one at a time."""
    inputs, count = job.sample_inputs, len(job.samples)
    if job.options.dynamic_batch:
        job.progress.step(f"{description} (batch of {count})")
        return run(*(x.numpy() for x in inputs))
    return np.concatenate([run(*job.sample(inputs, i)) for i in job.progress.track(range(count), description)])


def describe_inputs(job: ExportJob) -> str:
    """What the parity inputs were, for the sidecar."""
    if job.latent:
        noise = ", standard-normal noise" if job.latent.noise_input else ""
        return (f"{job.options.samples} standard-normal latents (torch seed {job.options.seed}{noise}), truncation "
                f"{job.latent.truncation:g}, against PyTorch fp32 eval outputs")  # fmt: skip
    return (
        f"{job.options.samples} synthetic inputs (seed {job.options.seed}; random grids of "
        f"{list(SYNTHETIC_GRID_CELLS)} cells upsampled bicubically, None = pixel noise) in the input "
        "value range, against PyTorch fp32 eval outputs"
    )


def kernel_hint(job: ExportJob, isa: HostISA) -> str:
    """What to do when this host's kernels fail where the reference math passes."""
    if job.options.precision == "int8" and job.options.int8_range == "full":
        missing = "" if isa.int8_dot_product else " (no VNNI / dot-product instructions: its int8 kernels saturate)"
        return f"full-range int8 weights do not run right on {isa.label}{missing}; export with --int8-range reduced"
    return f"the artifact does not run right on {isa.label}; check it on the target device"


def _figures(parity: Parity) -> dict[str, Any]:
    return {"psnr_db": parity.psnr_db, "max_abs": parity.max_abs, "mean_abs": parity.mean_abs,
            "passed": parity.passed}  # fmt: skip
