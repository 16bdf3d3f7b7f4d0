"""The domain feature network: a small CNN pocketgan trains on a dataset's own photos.

No pretrained encoder can be downloaded here, so each dataset gets its own, trained
self-supervised in well under a minute on a laptop CPU. Its training tasks make its
features respond to what image-quality metrics care about:

- **which degradation** was applied to a photo crop (none, blur, noise, JPEG, colour cast,
  checkerboard/upsampling artifacts, edge-map-like; see :mod:`.degradations`),
- **how strong** it was (severity regression), so features grade quality, not just detect it,
- **which photo** the crop came from (instance discrimination), so features also encode content.

The heads read the concatenated average-pooled maps of every level, so shallow levels
(pixel-scale artifacts) and deep levels (content) are all trained. ``embed`` is that same
pooled vector. The network is fully convolutional and is applied at the input's own
resolution (resizing would blur away the artifacts it detects); inputs smaller than
:attr:`DomainFeatureNet.MIN_SIZE` are upsampled.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pocketgan.core.contract import sidecar_path
from pocketgan.core.errors import PocketganError
from pocketgan.core.fsio import atomic_path, read_json, write_json_atomic
from pocketgan.core.progress import ProgressCallback, ProgressTask
from pocketgan.distill.features.base import FeatureNetwork, default_cache_dir
from pocketgan.distill.features.degradations import DEGRADATION_NAMES, degrade
from pocketgan.distill.progress import as_callback


@dataclass(frozen=True)
class DomainConfig:
    """Architecture and training budget of a domain network (part of its cache key).

    The defaults train in about 30–60 s on 2 CPU cores. ``version`` changes whenever the
    training recipe does, so old cache entries are not reused.
    """

    widths: tuple[int, ...] = (16, 32, 64, 128)
    crop: int = 64
    steps: int = 400
    batch_size: int = 32
    lr: float = 2e-3
    max_images: int = 1024
    seed: int = 0
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DomainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "widths" in values:
            values["widths"] = tuple(int(w) for w in values["widths"])
        return cls(**values)


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class DomainFeatureNet(FeatureNetwork):
    """Level 0: one 3×3 conv at full resolution; each further level halves the resolution (two 3×3 convs).

    ``forward`` returns one map per level (strides 1, 2, 4, 8 with the default four widths);
    ``embed`` is their concatenated spatial means (``sum(widths)`` values).
    """

    MIN_SIZE = 16

    def __init__(self, widths: Sequence[int] = DomainConfig.widths, name: str = "pocketgan-domain") -> None:
        super().__init__()
        if not widths or any(int(w) <= 0 for w in widths):
            raise PocketganError(f"domain network widths must be positive integers; got {list(widths)}")
        self.name = name
        self.training_info: dict[str, Any] = {}  # config, timings and held-out scores, once trained
        self.level_channels = tuple(int(w) for w in widths)
        self.num_features = sum(self.level_channels)
        levels: list[nn.Module] = [nn.Sequential(*_conv_bn_relu(3, self.level_channels[0]))]
        for previous, width in zip(self.level_channels[:-1], self.level_channels[1:], strict=True):
            levels.append(nn.Sequential(*_conv_bn_relu(previous, width, stride=2), *_conv_bn_relu(width, width)))
        self.levels = nn.ModuleList(levels)

    def prepare(self, x: Tensor) -> Tensor:
        short = min(x.shape[-2:])
        if short < self.MIN_SIZE:
            scale = self.MIN_SIZE / short
            size = (max(self.MIN_SIZE, round(x.shape[-2] * scale)), max(self.MIN_SIZE, round(x.shape[-1] * scale)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x

    def features(self, x: Tensor) -> list[Tensor]:
        maps = []
        for level in self.levels:
            x = level(x)
            maps.append(x)
        return maps

    def pool(self, features: list[Tensor]) -> Tensor:
        return torch.cat([f.mean(dim=(2, 3)) for f in features], dim=1)


class _TrainingHeads(nn.Module):
    """Degradation class, severity and photo identity, all read from the pooled features."""

    def __init__(self, num_features: int, num_photos: int) -> None:
        super().__init__()
        self.degradation = nn.Linear(num_features, len(DEGRADATION_NAMES))
        self.severity = nn.Linear(num_features, 1)
        self.photo = nn.Linear(num_features, num_photos)

    def forward(self, pooled: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.degradation(pooled), torch.sigmoid(self.severity(pooled)).squeeze(1), self.photo(pooled)


@dataclass
class _Batch:
    images: Tensor
    kinds: Tensor
    severities: Tensor
    photos: Tensor


def to_uint8_images(images: Tensor | Sequence[np.ndarray]) -> list[np.ndarray]:
    """``N×3×H×W`` floats in ``[-1, 1]`` (or a list of ``H×W×3`` uint8 arrays) → list of uint8 arrays."""
    if isinstance(images, Tensor):
        if images.dim() != 4 or images.shape[1] != 3:
            raise PocketganError(f"expected N×3×H×W images, got shape {tuple(images.shape)}")
        array = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        return [np.ascontiguousarray(a) for a in array]
    return [np.ascontiguousarray(np.asarray(a, dtype=np.uint8)) for a in images]


def _effective_crop(images: list[np.ndarray], crop: int) -> int:
    short = min(min(a.shape[:2]) for a in images)
    return max(DomainFeatureNet.MIN_SIZE, min(crop, short) // 8 * 8)


def _random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    if min(h, w) < size:
        scale = size / min(h, w)
        image = _resize_uint8(image, max(size, round(w * scale)), max(size, round(h * scale)))
        h, w = image.shape[:2]
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    patch = image[top : top + size, left : left + size]
    return patch[:, ::-1] if rng.random() < 0.5 else patch


def _resize_uint8(image: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _sample_batch(images: list[np.ndarray], crop: int, batch_size: int, rng: np.random.Generator) -> _Batch:
    crops, kinds, severities, photos = [], [], [], []
    for _ in range(batch_size):
        photo = int(rng.integers(len(images)))
        kind = int(rng.integers(len(DEGRADATION_NAMES)))
        severity = 0.0 if kind == 0 else float(rng.uniform(0.2, 1.0))
        crops.append(degrade(_random_crop(images[photo], crop, rng), kind, severity, rng))
        kinds.append(kind)
        severities.append(severity)
        photos.append(photo)
    pixels = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return _Batch(pixels, torch.tensor(kinds), torch.tensor(severities, dtype=torch.float32), torch.tensor(photos))


def _losses(net: DomainFeatureNet, heads: _TrainingHeads, batch: _Batch) -> tuple[Tensor, dict[str, float]]:
    kind_logits, severity, photo_logits = heads(net.pool(net.features(batch.images)))
    terms = {
        "degradation": F.cross_entropy(kind_logits, batch.kinds),
        "severity": 4.0 * F.mse_loss(severity, batch.severities),
        "photo": F.cross_entropy(photo_logits, batch.photos),
    }
    stats = {k: float(v.detach()) for k, v in terms.items()}
    stats["degradation_accuracy"] = float((kind_logits.argmax(1) == batch.kinds).float().mean())
    stats["photo_accuracy"] = float((photo_logits.argmax(1) == batch.photos).float().mean())
    stats["severity_mae"] = float((severity.detach() - batch.severities).abs().mean())
    return sum(terms.values()), stats


def train_domain_network(
    images: Tensor | Sequence[np.ndarray],
    config: DomainConfig = DomainConfig(),
    *,
    name: str = "pocketgan-domain",
    progress: ProgressCallback | None = None,
) -> DomainFeatureNet:
    """Train a domain feature network on ``images`` (the dataset's photos), deterministically for ``config.seed``.

    ``images``: ``N×3×H×W`` floats in ``[-1, 1]`` or a list of ``H×W×3`` uint8 RGB arrays (sizes may differ).
    Returns the frozen network; ``net.training_info`` holds the config, the effective crop size,
    timings and held-out accuracies (degradation class, photo identity, severity error).
    ``progress`` receives one event per step (status: the degradation and photo losses).
    """
    photos = to_uint8_images(images)[: config.max_images]
    if not photos:
        raise PocketganError("cannot train a domain feature network on zero images")
    if config.steps < 0 or config.batch_size < 1:
        raise PocketganError("domain network training needs steps >= 0 and batch_size >= 1")
    crop = _effective_crop(photos, config.crop)
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        net = DomainFeatureNet(config.widths, name=name)
        heads = _TrainingHeads(net.num_features, len(photos))
    parameters = [*net.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=max(1, config.steps))
    nn.Module.train(net, True)
    started = time.perf_counter()
    stats: dict[str, float] = {}
    with ProgressTask(as_callback(progress), f"training feature network {name}", total=config.steps) as task:
        for step in range(config.steps):
            batch = _sample_batch(photos, crop, config.batch_size, np.random.default_rng([config.seed, step]))
            loss, stats = _losses(net, heads, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            task.advance(status=f"degradation {stats['degradation']:.2f} photo {stats['photo']:.2f}")
    net.freeze()
    held_out = _held_out_scores(net, heads, photos, crop, config)
    net.training_info = {
        "config": config.to_dict(),
        "crop": crop,
        "images": len(photos),
        "degradations": list(DEGRADATION_NAMES),
        "train_seconds": round(time.perf_counter() - started, 2),
        "final_batch": {k: round(v, 4) for k, v in stats.items()},
        "held_out": held_out,
    }
    return net


@torch.no_grad()
def _held_out_scores(
    net: DomainFeatureNet, heads: _TrainingHeads, photos: list[np.ndarray], crop: int, config: DomainConfig
) -> dict[str, float]:
    """Accuracies on fresh crops and degradations (a random stream the training never drew from)."""
    rng = np.random.default_rng([config.seed, 2**31 - 1])
    batches = [_sample_batch(photos, crop, 64, rng) for _ in range(4)]
    results = [_losses(net, heads, batch)[1] for batch in batches]
    keys = ("degradation_accuracy", "photo_accuracy", "severity_mae")
    return {k: round(float(np.mean([r[k] for r in results])), 4) for k in keys}


# ---------------------------------------------------------------- files and the dataset cache


def save_domain_network(net: DomainFeatureNet, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (``.safetensors``) and its JSON sidecar ``path.json``, each atomically (weights first)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    sidecar_path(path).unlink(missing_ok=True)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"name": net.name})
    info = {
        "kind": "feature-network",
        "family": "pocketgan-domain",
        "name": net.name,
        "key": net.key,
        "widths": list(net.level_channels),
        "num_features": net.num_features,
        **net.training_info,
        **(extra or {}),
    }
    write_json_atomic(sidecar_path(path), info)
    return path


def load_domain_network(path: str | Path) -> DomainFeatureNet:
    """Read a domain network written by :func:`save_domain_network` (weights + ``.json`` sidecar)."""
    from pocketgan.models.io import load_state_dict_checked, read_state_dict

    path = Path(path)
    info = read_json(sidecar_path(path))
    if info.get("family") != "pocketgan-domain" or "widths" not in info:
        raise PocketganError(f"{sidecar_path(path)}: not a pocketgan domain feature network description")
    net = DomainFeatureNet(info["widths"], name=str(info.get("name", path.stem)))
    if not path.exists():
        raise PocketganError(f"{path}: no such file")
    load_state_dict_checked(net, read_state_dict(path), str(path))
    net.training_info = {k: v for k, v in info.items() if k not in ("kind", "family", "name", "key", "widths")}
    net.freeze()
    if info.get("key") not in (None, net.key):
        raise PocketganError(
            f"{path}: the weights do not match their description (key {net.key}, "
            f"{sidecar_path(path).name} says {info['key']}); delete both files to retrain"
        )
    return net


def dataset_label(root: str | Path) -> str:
    """The dataset's name (``dataset.json``'s ``name``, else the folder name) as a slug."""
    root = Path(root)
    name = ""
    meta = root / "dataset.json"
    if meta.is_file():
        try:
            name = str(json.loads(meta.read_text()).get("name") or "")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            name = ""
    name = name or root.resolve().name
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "dataset"


CACHE_KEY_LENGTH = 20


def cache_key(fingerprint: str, config: DomainConfig) -> str:
    """Content address of a domain network before it exists: the dataset's fingerprint and the network config."""
    payload = json.dumps({"dataset": fingerprint, "config": config.to_dict()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:CACHE_KEY_LENGTH]


def load_dataset_photos(
    root: str | Path, max_images: int, progress: ProgressCallback | None = None
) -> list[np.ndarray]:
    """The B side (photos) of the ``train`` split, at most ``max_images``, evenly spread over the split."""
    from pocketgan.distill.data import open_dataset

    dataset = open_dataset(root, split="train")
    count = len(dataset)
    if count == 0:
        raise PocketganError(f"{root}: the train split has no images to train a feature network on")
    indices = np.unique(np.linspace(0, count - 1, min(count, max_images)).round().astype(int))
    photos: list[np.ndarray] = []
    with ProgressTask(as_callback(progress), "reading photos", total=len(indices)) as task:
        for index in indices:
            photos.extend(to_uint8_images(dataset[int(index)]["B"][None]))
            task.advance()
    return photos


def domain_network_path(
    data: str | Path, *, config: DomainConfig = DomainConfig(), cache_dir: str | Path | None = None
) -> Path:
    """Where the domain network of dataset ``data`` for ``config`` is cached (whether or not it exists yet):
    ``<cache_dir>/pocketgan-<dataset>-<key>.safetensors`` (+ ``.json``), ``key`` hashing the dataset's
    fingerprint and ``config``, so a changed dataset or config is another network.
    """
    from pocketgan.distill.data import dataset_fingerprint

    root = _dataset_root(data)
    return _cache_path(root, dataset_fingerprint(root), config, cache_dir)


def _cache_path(root: Path, fingerprint: str, config: DomainConfig, cache_dir: str | Path | None) -> Path:
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return directory / f"{domain_network_name(root)}-{cache_key(fingerprint, config)}.safetensors"


def domain_network_for(
    data: str | Path,
    *,
    cache_dir: str | Path | None = None,
    config: DomainConfig = DomainConfig(),
    progress: ProgressCallback | None = None,
) -> DomainFeatureNet:
    """The domain network of dataset ``data``: from the cache when present, else trained and cached
    (at :func:`domain_network_path`; ``cache_dir`` defaults to ``$POCKETGAN_CACHE/features``)."""
    from pocketgan.distill.data import dataset_fingerprint

    root = _dataset_root(data)
    fingerprint = dataset_fingerprint(root)
    path = _cache_path(root, fingerprint, config, cache_dir)
    if path.exists() and sidecar_path(path).exists():
        return load_domain_network(path)
    photos = load_dataset_photos(root, config.max_images, progress)
    net = train_domain_network(photos, config, name=domain_network_name(root), progress=progress)
    save_domain_network(net, path, extra={"dataset": str(root.resolve()), "dataset_fingerprint": fingerprint})
    return load_domain_network(path)


def cached_domain_networks(cache_dir: str | Path, name: str, fingerprint: str | None = None) -> list[Path]:
    """Cached networks called ``name`` (``<name>-<content key>.safetensors`` with its sidecar), for the dataset
    with ``fingerprint`` if given, in file-name order (never by date: the choice must not depend on which
    was written last)."""
    stem = re.compile(rf"{re.escape(name)}-[0-9a-f]{{{CACHE_KEY_LENGTH}}}")
    found = []
    for path in Path(cache_dir).glob(f"{name}-*.safetensors"):
        sidecar = sidecar_path(path)
        if not stem.fullmatch(path.stem) or not sidecar.exists():
            continue  # another dataset's name with this prefix, or an interrupted write (the sidecar is last)
        if fingerprint is not None:
            try:
                if json.loads(sidecar.read_text()).get("dataset_fingerprint") != fingerprint:
                    continue
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                continue
        found.append(path)
    return sorted(found)


def domain_network_name(data: str | Path) -> str:
    """``pocketgan-<dataset name>``, the label of ``data``'s domain network."""
    return f"pocketgan-{dataset_label(data)}"


def _dataset_root(data: str | Path) -> Path:
    root = Path(data)
    if not root.is_dir():
        raise PocketganError(f"{root}: no such dataset directory")
    return root
