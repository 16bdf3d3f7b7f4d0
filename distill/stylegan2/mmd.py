"""Maximum mean discrepancy between student and teacher embeddings: DiME's distribution-matching loss.

:func:`mmd` compares a batch of student embeddings ``x`` (``N×D``) with the teacher's, given either
as a batch of teacher embeddings (``M×D``, *per-batch* statistics) or as a :class:`TeacherStats`
accumulated over many teacher samples (see :mod:`.teacher_stats`). Kernels:

- ``moments`` — the released DiME code's loss (``training/loss_DD.py``): L1 between the first and
  the second (element-wise squared) moments, ``mean_d |E x_d - E y_d| + mean_d |E x_d² - E y_d²|``;
  the code weights it 20 for DINO ResNet-50 and 15 for CLIP RN50 (:data:`MOMENT_WEIGHTS`);
- ``linear`` — ``k(x, y) = x·y``: MMD² is the squared distance of the means;
- ``rbf`` — Gaussian ``exp(-|x - y|² / 2σ²)``, σ by the median heuristic (:func:`median_bandwidth`)
  unless given;
- ``polynomial`` — KID's ``(x·y / D + 1)³``.

The kernel estimates are unbiased (U-statistics) unless ``unbiased=False``: within-set sums leave
out ``i = j``; against a teacher *batch of the same size* the cross sum leaves out ``i = j`` too
(Gretton et al.'s MMD²_u — the pairs a student and a teacher made from the same latent are not
independent draws), so identical sets give exactly 0. An unbiased estimate may be slightly
negative. ``moments`` is the released L1 form (not an MMD estimate, biased).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor

from pocketgan.core.errors import PocketganError, first_line
from pocketgan.core.fsio import atomic_path

KERNELS = ("moments", "linear", "rbf", "polynomial")
#: The released DiME code's weight of each moment term, by encoder.
MOMENT_WEIGHTS: dict[str, float] = {"dino-resnet50": 20.0, "clip-rn50": 15.0}
#: KID's polynomial kernel: degree 3, coefficient 1, ``γ = 1 / D``.
POLY_DEGREE, POLY_COEF = 3, 1.0
STATS_FORMAT = "pocketgan-teacher-stats"
STATS_VERSION = "1"


def pairwise_sq_distances(a: Tensor, b: Tensor) -> Tensor:
    """``|a_i - b_j|²`` for every row pair (``N×M``), never negative."""
    sq = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1).unsqueeze(0) - 2 * a @ b.T
    return sq.clamp_min(0)


def median_bandwidth(points: Tensor) -> Tensor:
    """The median heuristic: the median of the distances ``|p_i - p_j|`` over pairs ``i < j`` (detached).

    For the points (0, 0), (3, 0), (0, 4) the distances are 3, 4 and 5: the bandwidth is 4.
    """
    points = points.detach()
    if points.shape[0] < 2:
        raise PocketganError("the median bandwidth needs at least two points")
    rows, cols = torch.triu_indices(points.shape[0], points.shape[0], offset=1, device=points.device)
    distances = pairwise_sq_distances(points, points)[rows, cols].sqrt()
    return distances.median().clamp_min(torch.finfo(points.dtype).eps)


def linear_kernel(a: Tensor, b: Tensor) -> Tensor:
    """``a_i · b_j``."""
    return a @ b.T


def polynomial_kernel(a: Tensor, b: Tensor) -> Tensor:
    """KID's ``(a_i · b_j / D + 1)³``."""
    return (a @ b.T / a.shape[1] + POLY_COEF) ** POLY_DEGREE


def rbf_kernel(a: Tensor, b: Tensor, bandwidth: Tensor | float) -> Tensor:
    """Gaussian ``exp(-|a_i - b_j|² / (2 σ²))`` with ``σ = bandwidth``."""
    return torch.exp(-pairwise_sq_distances(a, b) / (2 * torch.as_tensor(bandwidth, dtype=a.dtype) ** 2))


def _within_mean(k: Tensor, unbiased: bool) -> Tensor:
    """Mean of a square kernel matrix; without its diagonal when ``unbiased``."""
    n = k.shape[0]
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1)) if unbiased else k.mean()


def kernel_mmd2(kxx: Tensor, kyy_mean: Tensor, kxy: Tensor, *, unbiased: bool, paired: bool) -> Tensor:
    """MMD² from the kernel matrices (``kyy_mean``: the teacher's within-set mean, already reduced).

    ``paired``: ``x_i`` and ``y_i`` come from the same draw, so the cross term leaves out ``i = j``.
    """
    cross = _within_mean(kxy, True) if unbiased and paired else kxy.mean()
    return _within_mean(kxx, unbiased) + kyy_mean - 2 * cross


def moment_loss(x: Tensor, mean: Tensor, second_moment: Tensor) -> Tensor:
    """The released DiME loss: ``mean_d |mean_i x_id - mean_d| + mean_d |mean_i x_id² - second_moment_d|``."""
    mean, second_moment = mean.to(x), second_moment.to(x)
    return (x.mean(0) - mean).abs().mean() + (x.pow(2).mean(0) - second_moment).abs().mean()


Kernel = Callable[[Tensor, Tensor], Tensor]


def _kernel(name: str, bandwidth: Tensor | float | None, pooled: Callable[[], Tensor]) -> Kernel:
    if name == "linear":
        return linear_kernel
    if name == "polynomial":
        return polynomial_kernel
    sigma = median_bandwidth(pooled()) if bandwidth is None else bandwidth
    return lambda a, b: rbf_kernel(a, b, sigma)


def _check(x: Tensor, dim: int | None, kernel: str, unbiased: bool) -> None:
    if kernel not in KERNELS:
        raise PocketganError(f"unknown MMD kernel {kernel!r}; choose from {', '.join(KERNELS)}")
    if x.dim() != 2 or (dim is not None and x.shape[1] != dim):
        raise PocketganError(f"MMD needs N×{dim or 'D'} embeddings; got shape {tuple(x.shape)}")
    if unbiased and kernel != "moments" and x.shape[0] < 2:
        raise PocketganError("an unbiased MMD needs at least two embeddings per set")


def mmd(
    x: Tensor,
    y: Tensor | TeacherStats,
    kernel: str = "moments",
    *,
    unbiased: bool = True,
    bandwidth: float | None = None,
) -> Tensor:
    """The discrepancy between embeddings ``x`` (``N×D``) and the teacher's ``y`` (``M×D`` or :class:`TeacherStats`).

    Returns a scalar, differentiable in ``x`` (and in ``y`` when it is a tensor that requires grad);
    MMD² for the kernels, the L1 moment distance for ``moments`` (see the module docstring).
    ``bandwidth`` fixes the RBF σ; by default it is the median heuristic over ``x`` and ``y`` pooled
    (over the teacher's reservoir for accumulated statistics, computed once).
    """
    if isinstance(y, TeacherStats):
        return y.mmd(x, kernel, unbiased=unbiased, bandwidth=bandwidth)
    _check(x, None, kernel, unbiased)
    _check(y, x.shape[1], kernel, unbiased)
    if kernel == "moments":
        return moment_loss(x, y.mean(0), y.pow(2).mean(0))
    k = _kernel(kernel, bandwidth, lambda: torch.cat([x, y]))
    paired = x.shape[0] == y.shape[0]
    return kernel_mmd2(k(x, x), _within_mean(k(y, y), unbiased), k(x, y), unbiased=unbiased, paired=paired)


class TeacherStats:
    """Teacher-embedding statistics accumulated over many teacher samples (DiME's "global" statistics).

    Keeps the running mean and element-wise second moment (float64) of every embedding seen, and a
    uniform random *reservoir* of up to ``reservoir`` embeddings (Algorithm R, seeded: the same
    embeddings in the same order give the same reservoir) for the kernel MMDs. ``metadata`` (strings)
    records where the statistics came from (encoder name and key, teacher, sample count, ...).
    """

    def __init__(self, dim: int, reservoir: int = 1024, *, seed: int = 0, metadata: Mapping[str, str] | None = None):
        if dim < 1 or reservoir < 0:
            raise PocketganError(f"teacher statistics need dim ≥ 1 and reservoir ≥ 0; got {dim} and {reservoir}")
        self.dim, self.capacity, self.count = dim, reservoir, 0
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.sum_sq = torch.zeros(dim, dtype=torch.float64)
        self.reservoir = torch.zeros(0, dim)
        self.metadata: dict[str, str] = dict(metadata or {})
        self._rng = torch.Generator().manual_seed(seed)
        self._cache: dict[str, Tensor] = {}

    @property
    def mean(self) -> Tensor:
        """The mean embedding (float64, ``D``)."""
        return self.sum / max(self.count, 1)

    @property
    def second_moment(self) -> Tensor:
        """The mean of the element-wise squared embeddings (float64, ``D``)."""
        return self.sum_sq / max(self.count, 1)

    @torch.no_grad()
    def update(self, embeddings: Tensor) -> None:
        """Add a batch of teacher embeddings (``B×D``)."""
        if embeddings.dim() != 2 or embeddings.shape[1] != self.dim:
            raise PocketganError(f"teacher statistics of dimension {self.dim} got shape {tuple(embeddings.shape)}")
        batch = embeddings.detach().cpu()
        self.sum += batch.double().sum(0)
        self.sum_sq += batch.double().pow(2).sum(0)
        self._sample(batch.float())
        self.count += batch.shape[0]
        self._cache.clear()

    def _sample(self, batch: Tensor) -> None:
        """Algorithm R over ``batch``: fill the reservoir, then embedding number ``t`` (0-based, over every
        embedding seen) replaces slot ``j ~ U{0..t}`` when ``j`` < capacity, in order."""
        fill = max(0, min(self.capacity - self.reservoir.shape[0], batch.shape[0]))
        if fill:
            self.reservoir = torch.cat([self.reservoir, batch[:fill]])
        rest = batch[fill:]
        if not self.capacity or not rest.shape[0]:
            return
        seen = torch.arange(self.count + fill, self.count + batch.shape[0], dtype=torch.float64) + 1
        slots = (torch.rand(rest.shape[0], generator=self._rng, dtype=torch.float64) * seen).long()
        accepted = (slots < self.capacity).nonzero().flatten().tolist()
        if accepted:
            self.reservoir = self.reservoir.clone()  # never edit a tensor handed out (or loaded) earlier
            for index in accepted:
                self.reservoir[slots[index]] = rest[index]

    def mmd(
        self, x: Tensor, kernel: str = "moments", *, unbiased: bool = True, bandwidth: float | None = None
    ) -> Tensor:
        """:func:`mmd` of ``x`` against these statistics (moments and linear: the exact running moments;
        rbf and polynomial: the reservoir, its within-set term computed once)."""
        _check(x, self.dim, kernel, unbiased)
        if self.count == 0:
            raise PocketganError("teacher statistics are empty: accumulate teacher embeddings first")
        if kernel == "moments":
            return moment_loss(x, self.mean, self.second_moment)
        if kernel == "linear":
            return self._linear_mmd(x, unbiased)
        where = f"{x.device}:{x.dtype}"
        reservoir = self._cached(f"reservoir:{where}", lambda: self.reservoir.to(x))
        if reservoir.shape[0] < 2:
            raise PocketganError(f"the {kernel} MMD needs a reservoir of at least two teacher embeddings")
        sigma = bandwidth if bandwidth is not None else self._cached(f"σ:{where}", lambda: median_bandwidth(reservoir))
        k = _kernel(kernel, sigma, lambda: reservoir)
        key = f"kyy:{kernel}:{float(sigma) if kernel == 'rbf' else ''}:{unbiased}:{where}"
        kyy = self._cached(key, lambda: _within_mean(k(reservoir, reservoir), unbiased))  # a constant: once
        return kernel_mmd2(k(x, x), kyy, k(x, reservoir), unbiased=unbiased, paired=False)

    def _linear_mmd(self, x: Tensor, unbiased: bool) -> Tensor:
        """``|E x - E y|²`` with the teacher's exact running moments (``|E y|²`` unbiased too when asked)."""
        mean = self.mean.to(x)
        if not unbiased:
            return (x.mean(0) - mean).pow(2).sum()
        n = self.count
        teacher_sq = (n * self.mean.pow(2).sum() - self.second_moment.sum()) / (n - 1) if n > 1 else mean.pow(2).sum()
        return _within_mean(x @ x.T, True) - 2 * x.mean(0) @ mean + teacher_sq.to(x)

    def _cached(self, key: str, compute: Callable[[], Tensor]) -> Tensor:
        if key not in self._cache:
            self._cache[key] = compute().detach()
        return self._cache[key]

    def check_encoder(self, name: str, key: str, num_features: int) -> None:
        """One line unless these statistics were computed with the encoder ``name`` of content key ``key``."""
        if num_features != self.dim:
            raise PocketganError(
                f"teacher statistics have {self.dim}-d embeddings; encoder {name} gives {num_features}"
            )
        recorded = self.metadata.get("encoder_key")
        if recorded and recorded != key:
            raise PocketganError(
                f"teacher statistics were computed with encoder {self.metadata.get('encoder', '?')} "
                f"(key {recorded[:12]}…), not {name} (key {key[:12]}…): recompute them with teacher_stats"
            )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the statistics to a ``.safetensors`` file (atomically: a temporary name, then renamed)."""
        from safetensors.torch import save_file

        tensors = {"sum": self.sum, "sum_sq": self.sum_sq, "reservoir": self.reservoir.float().contiguous()}
        metadata = {**self.metadata, "format": STATS_FORMAT, "version": STATS_VERSION,
                    "count": str(self.count), "capacity": str(self.capacity),
                    "rng_state": self._rng.get_state().numpy().tobytes().hex()}  # fmt: skip
        path = Path(path)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TeacherStats:
        """Statistics saved by :meth:`save` (one line if the file is missing or is something else)."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise PocketganError(f"{path}: no such teacher statistics file")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = dict(handle.metadata() or {})
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except Exception as exc:
            raise PocketganError(f"{path}: cannot read teacher statistics ({first_line(exc, 120)})") from None
        if metadata.get("format") != STATS_FORMAT or set(tensors) != {"sum", "sum_sq", "reservoir"}:
            raise PocketganError(f"{path}: not a pocketgan teacher statistics file (make one with teacher_stats)")
        return cls._restore(tensors, metadata)

    @classmethod
    def _restore(cls, tensors: dict[str, Tensor], metadata: dict[str, str]) -> TeacherStats:
        reserved = {"format", "version", "count", "capacity", "rng_state"}
        stats = cls(tensors["sum"].shape[0], int(metadata["capacity"]),
                    metadata={k: v for k, v in metadata.items() if k not in reserved})  # fmt: skip
        stats.sum, stats.sum_sq, stats.reservoir = tensors["sum"], tensors["sum_sq"], tensors["reservoir"]
        stats.count = int(metadata["count"])
        state = bytes.fromhex(metadata.get("rng_state", ""))
        if state:
            stats._rng.set_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
        return stats
