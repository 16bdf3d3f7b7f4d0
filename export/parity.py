"""Agreement of an artifact with PyTorch, and the rule that decides whether it is good enough.

Rules by precision (each can be overridden with ``--atol`` / ``--min-psnr``):

- **fp32**: max |artifact − PyTorch| ≤ ``atol``, default 1e-4.
- **fp16**: PSNR ≥ 50 dB (RMS error ≤ 0.3 % of the output range) and max abs error ≤ 5e-2.
  The max alone is a poor fp16 criterion: one pixel's accumulated rounding grows with image
  size and depth (measured at 256 px: ResNet-9 ngf 64 max 4.2e-3 / 71.8 dB, Mobile ResNet
  ngf 16 max 1.1e-2 / 67.9 dB), so the bound on it only catches localized breakage, and the
  PSNR bound catches overall drift.
- **int8**: judged by PSNR over the output value range, ≥ 30 dB by default when calibrated on real
  images (``--calibration DIR`` or the model's own dataset), ≥ 25 dB with synthetic inputs; a max-abs bound
  is meaningless for quantized activations, so none applies unless ``--atol`` is given. 25 dB
  fails a broken quantization (an unrelated generator's output scores ≈ 12 dB, all zeros ≈ 15
  dB) but accepts the usual post-training loss of InstanceNorm generators. Measured on
  random-weight models (seed 0) with synthetic calibration at 256 px, 7-bit weights (the default
  ``--int8-range reduced``) / 8-bit: ResNet-9 ngf 64 31.2 / 31.6 dB, Mobile ResNet ngf 16
  25.3 / 25.4 dB (close to the bar: calibrate on real images with ``--calibration``); U-Net-256
  ngf 16 56.5 dB (8-bit). Raise the bar with ``--min-psnr`` (≈ 30–35 dB looks lossless).
  The rule is checked with the host's kernels; see :mod:`pocketgan.export.gate`.

PSNR uses the model's output value range as the data range; identical outputs are reported
as :data:`PSNR_CAP_DB` so the sidecar stays valid JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio

from pocketgan.core.errors import ParityError
from pocketgan.core.contract import Parity

DEFAULT_ATOL = {"fp32": 1e-4, "fp16": 5e-2}
DEFAULT_MIN_PSNR_DB = {"fp16": 50.0, "int8": 25.0}
#: int8 calibrated on real images (``--calibration DIR`` or the model's dataset): a trained generator
#: calibrated on its own data should look lossless, so the default bar is higher.
REAL_CALIBRATION_MIN_PSNR_DB = 30.0
PSNR_CAP_DB = 200.0


@dataclass(frozen=True)
class ParityRule:
    """Pass when ``max_abs <= atol`` (if set) and ``psnr_db >= min_psnr_db`` (if set)."""

    atol: float | None = None
    min_psnr_db: float | None = None

    @classmethod
    def for_precision(
        cls, precision: str, atol: float | None = None, min_psnr_db: float | None = None, *,
        real_calibration: bool = False,
    ) -> ParityRule:  # fmt: skip
        """The default rule of ``precision`` (module docstring), with explicit bounds taking precedence;
        int8 calibrated on ``real_calibration`` images defaults to :data:`REAL_CALIBRATION_MIN_PSNR_DB`."""
        default = DEFAULT_MIN_PSNR_DB.get(precision)
        if precision == "int8" and real_calibration:
            default = REAL_CALIBRATION_MIN_PSNR_DB
        return cls(
            atol=DEFAULT_ATOL.get(precision) if atol is None else atol,
            min_psnr_db=default if min_psnr_db is None else min_psnr_db,
        )

    def describe(self) -> str:
        """``"max_abs <= 0.0001 and psnr_db >= 30"``."""
        parts = []
        if self.atol is not None:
            parts.append(f"max_abs <= {self.atol:g}")
        if self.min_psnr_db is not None:
            parts.append(f"psnr_db >= {self.min_psnr_db:g}")
        return " and ".join(parts) or "always passes"

    def passes(self, max_abs: float, psnr_db: float) -> bool:
        """Whether the figures meet every bound of this rule (NaN never does)."""
        atol_ok = self.atol is None or max_abs <= self.atol
        psnr_ok = self.min_psnr_db is None or psnr_db >= self.min_psnr_db
        return bool(atol_ok and psnr_ok and not math.isnan(max_abs))


def measure_parity(
    outputs: np.ndarray, reference: np.ndarray, value_range: tuple[float, float], rule: ParityRule
) -> Parity:
    """Compare an artifact's ``outputs`` with PyTorch's ``reference`` (same shape, one row per sample)."""
    if outputs.shape != reference.shape:
        raise ParityError(f"artifact output shape {list(outputs.shape)} differs from PyTorch's {list(reference.shape)}")
    diff = np.abs(outputs.astype(np.float64) - reference.astype(np.float64))
    max_abs, mean_abs = float(diff.max()), float(diff.mean())
    span = float(value_range[1] - value_range[0])
    psnr = peak_signal_noise_ratio(torch.from_numpy(outputs).double(), torch.from_numpy(reference).double(),
                                   data_range=span)  # fmt: skip
    psnr = min(float(psnr), PSNR_CAP_DB)  # NaN stays NaN
    return Parity(
        max_abs=max_abs,
        mean_abs=mean_abs,
        psnr_db=round(psnr, 3),
        atol=span if rule.atol is None else rule.atol,  # no atol bound: any in-range output passes it
        samples=int(reference.shape[0]),
        passed=rule.passes(max_abs, psnr),
    )


def check_parity(
    parity: Parity, rule: ParityRule, what: str, *, reference: Parity | None = None, host: str = "", hint: str = ""
) -> None:
    """Raise :class:`ParityError` (one line with the figures) when ``parity`` fails ``rule``.

    ``reference`` is the same artifact measured with reference math (see
    :attr:`~pocketgan.export.job.BuiltArtifact.reference_run`): when it passes where the host's
    kernels fail, the message says so, names the ``host`` ISA and adds ``hint`` (what to do).
    """
    if parity.passed:
        return
    figures = (f"max abs {parity.max_abs:.3g}, mean abs {parity.mean_abs:.3g}, PSNR {parity.psnr_db:.2f} dB "
               f"over {parity.samples} samples")  # fmt: skip
    if reference is not None and reference.passed:
        raise ParityError(
            f"{what} fails on this host's kernels ({host}): {figures}, beyond the rule {rule.describe()}, while "
            f"the graph's reference math passes (PSNR {reference.psnr_db:.2f} dB): {hint}; nothing written"
        )
    also = "" if reference is None else f" (reference math: PSNR {reference.psnr_db:.2f} dB)"
    raise ParityError(
        f"{what} disagrees with PyTorch beyond the rule {rule.describe()}: {figures}{also}; nothing written"
    )
