"""The API behind ``pocketgan teacher`` and ``pocketgan distill``: settings in, a model directory out.

:func:`train_teacher` and :func:`distill_student` open the data, build the networks (student,
teacher, perceptual network), and hand a :class:`~pocketgan.distill.base.Distiller` to the
training loop (:func:`pocketgan.distill.loop.train`). Both take ``progress``, a
:data:`~pocketgan.core.progress.ProgressCallback` (the CLI passes ``RichProgress``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.core.options import parse_key_values
from pocketgan.core.progress import ProgressCallback
from pocketgan.distill.base import DistillConfig, Distiller, get_distiller, list_distillers
from pocketgan.distill.checkpoint import seed_everything
from pocketgan.distill.distributed import DistributedContext
from pocketgan.distill.loop import train
from pocketgan.distill.progress import as_callback

DEFAULT_STEPS = 1000
DEFAULT_CHECKPOINT_EVERY = 250


@dataclass
class RunSettings:
    """How long and how to train: shared by :func:`train_teacher` and :func:`distill_student`."""

    steps: int | None = None  # None: ``epochs`` or DEFAULT_STEPS
    epochs: float | None = None
    batch_size: int = 4
    lr: float | None = None  # None: the method's default (2e-4 pix2pix family, 0.002 StyleGAN2)
    gan_mode: str = "lsgan"
    seed: int = 0
    size: int | None = None
    direction: str = "AtoB"
    augment: bool = True
    resume: bool = True
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    device: str = "auto"
    options: dict[str, Any] | None = None

    def validate(self) -> RunSettings:
        """Raise a one-line error for inconsistent settings (before any data is read)."""
        if self.steps is not None and self.epochs is not None:
            raise PocketganError("give either --steps or --epochs, not both")
        checks = [
            (self.steps is None or self.steps >= 0, "--steps must be >= 0"),
            (self.epochs is None or self.epochs > 0, "--epochs must be > 0"),
            (self.batch_size >= 1, "--batch must be >= 1"),
            (self.lr is None or self.lr > 0, "--lr must be > 0"),
            (self.seed >= 0, "--seed must be >= 0"),
            (self.size is None or self.size > 0, "--size must be > 0"),
            (self.direction in ("AtoB", "BtoA"), f"--direction {self.direction}: expected AtoB or BtoA"),
        ]
        for ok, message in checks:
            if not ok:
                raise PocketganError(message)
        return self

    def total_steps(self, dataset_size: int) -> int:
        """``steps``, or ``ceil(epochs · dataset_size / batch)``, or :data:`DEFAULT_STEPS`."""
        self.validate()
        if self.epochs is not None:
            return max(1, int(np.ceil(self.epochs * dataset_size / self.batch_size)))
        return DEFAULT_STEPS if self.steps is None else self.steps

    def config(self, steps: int, default_lr: float = 2e-4) -> DistillConfig:
        """The :class:`DistillConfig` of a run of ``steps`` steps (``default_lr`` when ``lr`` is not set)."""
        return DistillConfig(
            steps=steps, batch_size=self.batch_size, lr=self.lr if self.lr is not None else default_lr,
            gan_mode=self.gan_mode, seed=self.seed, options=dict(self.options or {}),
        )  # fmt: skip


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``--option key=value`` items as a typed dict (see :func:`pocketgan.core.options.parse_key_values`)."""
    return parse_key_values(items)


TEACHER_METHODS = ("pix2pix", "cyclegan", "stylegan2")


def train_teacher(
    data: str | Path | None,
    out: str | Path,
    *,
    arch: str = "resnet9:ngf=64",
    init_arch: str | None = None,
    method: str = "pix2pix",
    settings: RunSettings | None = None,
    progress: ProgressCallback | None = None,
    **overrides: Any,
) -> Path:
    """Train a teacher on ``data`` with ``method`` (pix2pix: paired; cyclegan: unpaired; stylegan2: a folder of
    images, ``arch`` a ``stylegan2:...`` reference) and save it to ``out``.

    ``arch`` is an architecture reference (trained from scratch, pix2pix init), a
    model directory, or a checkpoint file (``latest_net_G.pth``/``.safetensors``) whose
    architecture is ``init_arch``; those initialise the teacher. With ``steps=0`` the
    model is only imported into ``out`` (no data needed). ``overrides`` are
    :class:`RunSettings` fields (``steps=1200, batch_size=4, size=64, ...``). A CycleGAN
    teacher's ``out`` is ``G_A`` (A → B); its ``G_B`` (B → A) goes to ``out/G_B``.
    """
    if method not in TEACHER_METHODS:
        raise PocketganError(f"teacher --method {method!r}: choose {' or '.join(TEACHER_METHODS)}")
    settings = _settings(settings, overrides)
    if settings.steps == 0:
        return _import_model(arch, init_arch, out)
    return _run(get_distiller(method), data, out, settings, student_ref=arch, student_arch=init_arch,
                progress=as_callback(progress))  # fmt: skip


def distill_student(
    method: str,
    teacher: str | Path | None,
    student: str | None,
    data: str | Path,
    out: str | Path,
    *,
    perceptual: str | None = None,
    settings: RunSettings | None = None,
    progress: ProgressCallback | None = None,
    **overrides: Any,
) -> Path:
    """Distill ``teacher`` (a model directory) into ``student`` with ``method`` and save it to ``out``.

    ``student`` is an architecture reference (from scratch) or a model directory
    (e.g. a pruned teacher). For a StyleGAN2 teacher (``kd``, ``itgc``, ``dime``, ``nickel``,
    ``nickel-dime``) it is a pruned StyleGAN2 model directory, or ``None`` with ``options["ratio"]``:
    the teacher pruned uniformly to that ratio (:func:`pocketgan.models.prune_uniform.prune_uniform`,
    criterion ``options["criterion"]``, L1 by default). ``perceptual`` names the feature network for methods that
    need one (``None``: the dataset's own network); other methods ignore it.
    ``overrides`` are :class:`RunSettings` fields, as for :func:`train_teacher`.
    """
    distiller_cls = resolve_method(method, teacher)
    return _run(distiller_cls, data, out, _settings(settings, overrides), student_ref=student,
                teacher_ref=teacher, perceptual=perceptual, progress=as_callback(progress))  # fmt: skip


def _settings(settings: RunSettings | None, overrides: dict[str, Any]) -> RunSettings:
    unknown = sorted(set(overrides) - {f.name for f in fields(RunSettings)})
    if unknown:
        raise TypeError(f"unknown training setting(s): {', '.join(unknown)}")
    return replace(settings or RunSettings(), **overrides).validate()


LATENT_VARIANTS = {"kd": "stylegan2-kd"}
"""Methods whose StyleGAN2 form is another class: ``kd`` of a latent-input teacher is CAGAN's KD."""


def resolve_method(method: str, teacher: str | Path | None = None) -> type[Distiller]:
    """The :class:`Distiller` ``distill_student(method, teacher, ...)`` runs: ``kd`` of a StyleGAN2 teacher (a
    latent-input model directory or a ``.pt``/``.pkl`` checkpoint) is CAGAN's KD (``stylegan2-kd``)."""
    return get_distiller(_registry_name(method, teacher))


def _registry_name(method: str, teacher: str | Path | None = None) -> str:
    name = method if method in list_distillers() else method.replace("_", "-")
    if name in LATENT_VARIANTS and teacher is not None and _is_latent_model_dir(teacher):
        return LATENT_VARIANTS[name]
    return name


def _is_latent_model_dir(ref: str | Path) -> bool:
    """Whether ``ref`` is a StyleGAN2 checkpoint file or a model directory of a latent-input generator."""
    from pocketgan.core.contract import MODEL_JSON, ModelManifest
    from pocketgan.distill.stylegan2.discriminator_io import is_stylegan2_checkpoint

    path = Path(str(ref))
    if is_stylegan2_checkpoint(path):
        return True
    if not (path / MODEL_JSON).is_file():
        return False
    return ModelManifest.load(path).io.input_kind == "latent"


def _check_inputs(distiller_cls: type[Distiller], data: str | Path | None, teacher_ref: str | Path | None) -> None:
    if data is None or not Path(data).is_dir():
        raise PocketganError(f"--data {data}: no such dataset directory")
    if teacher_ref is not None:
        check_teacher_dir(teacher_ref)
    elif distiller_cls.needs_teacher:
        raise PocketganError(f"{distiller_cls.name} needs a teacher (--teacher DIR)")


def _run(
    distiller_cls: type[Distiller],
    data: str | Path | None,
    out: str | Path,
    settings: RunSettings,
    *,
    student_ref: str | None,
    student_arch: str | None = None,
    teacher_ref: str | Path | None = None,
    perceptual: str | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """The one implementation behind both commands: open data, build networks, train, save."""
    settings.validate()
    _check_inputs(distiller_cls, data, teacher_ref)
    from pocketgan.distill.data import open_dataset
    from pocketgan.distill.distributed import distributed_session

    with distributed_session(settings.device) as context:
        seed_everything(settings.seed)
        student, student_source, teacher = _networks(distiller_cls, student_ref, student_arch, teacher_ref, settings)
        latent = distiller_cls.input_kind == "latent"
        # the student's I/O spec says how pixels are resized and normalized (a wrapped generator may differ)
        size = _latent_image_size(settings.size, student) if latent else settings.size
        dataset = open_dataset(data, split="train", size=size, direction=settings.direction,
                               augment=settings.augment, seed=settings.seed, io=student.io,
                               layout="images" if latent else None)  # fmt: skip
        steps = settings.total_steps(len(dataset))
        run_info = _run_info(settings, data, student_source, teacher_ref, teacher, context)
        unpaired = getattr(dataset, "layout", "") == UNALIGNED_LAYOUT
        source = teacher_ref if teacher_ref is not None else student_ref
        companions, digests = (_latent_companions(source) if latent else
                               _companions(source, student_arch, unpaired))  # fmt: skip
        run_info.update(digests)
        feature_net, labels = _perceptual_network(distiller_cls, perceptual, data, context, progress)
        run_info.update({"perceptual": feature_net.key} if feature_net is not None else {})
        config = replace(settings.config(steps, distiller_cls.default_lr), unpaired=unpaired)
        distiller = distiller_cls(student, teacher.model if teacher is not None else None, config,
                                  perceptual=feature_net, companions=companions)  # fmt: skip
        result = train(
            distiller, dataset, out_dir=out, steps=steps, batch_size=settings.batch_size, seed=settings.seed,
            checkpoint_every=settings.checkpoint_every, resume=settings.resume, progress=progress,
            run_info=run_info, provenance=labels, context=context,
        )  # fmt: skip
        if context.is_main:
            _save_extra_outputs(distiller, Path(out), run_info)
    return result.model_dir


def _latent_image_size(size: int | None, generator: nn.Module) -> int:
    """The real images' size for a StyleGAN2: its output size (``--size`` may only repeat it)."""
    made = int(generator.io.fixed_size[0]) if generator.io.fixed_size else int(generator.size)
    if size is not None and size != made:
        raise PocketganError(f"--size {size}: this StyleGAN2 makes {made}×{made} images; the real images are "
                             f"resized to {made} (leave --size out)")  # fmt: skip
    return made


UNALIGNED_LAYOUT = "unaligned"
COMPANION_DIRS = {"G_B": "G_B"}
"""Companion generators a model directory may hold, by name → sub-directory (a CycleGAN teacher's ``G_B``)."""


def companion_path(ref: str | Path, name: str = "G_B") -> Path | None:
    """Where ``ref``'s companion ``name`` is: ``DIR/G_B`` of a model directory, or ``…G_B.pth`` beside a
    ``…G_A.pth`` checkpoint (junyanz's file names); ``None`` when there is none."""
    path = Path(str(ref))
    if path.is_dir():
        candidate = path / COMPANION_DIRS[name]
        return candidate if (candidate / "model.json").is_file() else None
    if path.is_file() and "G_A" in path.name:
        candidate = path.with_name(path.name.replace("G_A", name))
        return candidate if candidate.is_file() else None
    return None


def _companions(ref: str | Path, arch: str | None, unpaired: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """On unpaired data, the companions (``G_B``) found beside ``ref`` (see :func:`companion_path`), and their
    weights' digests for the run identity."""
    from pocketgan.models import load_model

    if not unpaired:
        return {}, {}
    found = {name: companion_path(ref, name) for name in COMPANION_DIRS}
    loaded = {name: load_model(path, arch if path.is_file() else None) for name, path in found.items() if path}
    return ({name: item.model for name, item in loaded.items()},
            {f"{name}_sha256": item.manifest.weights_sha256 for name, item in loaded.items()})  # fmt: skip


def _latent_companions(ref: str | Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A StyleGAN2 teacher's discriminator (``DIR/discriminator``, or a checkpoint's ``d``), and its digest."""
    from pocketgan.distill.stylegan2.discriminator_io import teacher_discriminator

    discriminator, digest = teacher_discriminator(ref) if ref is not None else (None, None)
    if discriminator is None:
        return {}, {}
    return {"D": discriminator}, {"D_sha256": digest}


def _networks(distiller_cls: type[Distiller], ref: str | None, arch: str | None, teacher_ref: str | Path | None,
              settings: RunSettings) -> tuple[nn.Module, str, Any]:  # fmt: skip
    """``(student, where it came from, teacher)``. The student is built first (its initialisation draws from the
    seeded RNG), except a StyleGAN2 student, which may be the teacher pruned uniformly."""
    if distiller_cls.input_kind == "latent" and distiller_cls.needs_teacher:
        from pocketgan.distill.stylegan2.networks import latent_student

        teacher = load_teacher(teacher_ref) if teacher_ref is not None else None
        student, source = latent_student(ref, teacher, dict(settings.options or {}), distiller_cls.name)
        return student, source, teacher
    if ref is None:
        raise PocketganError(f"{distiller_cls.name} needs a student (--student ARCH or DIR)")
    student, source = load_trainable_generator(ref, arch)
    teacher = load_teacher(teacher_ref) if teacher_ref is not None else None
    if teacher is not None and teacher.model.io.input_kind == "latent":
        raise PocketganError(f"{distiller_cls.name} distils image-to-image generators and the teacher is a StyleGAN2 "
                             "(latent input): use --method kd, itgc, dime, nickel or nickel-dime")  # fmt: skip
    return student, source, teacher


def _save_extra_outputs(distiller: Distiller, out: Path, run_info: dict[str, Any]) -> None:
    """Save the distiller's extra generators (a CycleGAN's ``G_B``) as model directories ``out/<name>``."""
    from pocketgan.models import save_model

    for name, module in distiller.extra_outputs().items():
        save_model(module, out / name, provenance={**run_info, "method": distiller.name, "role": name,
                                                   "companion_of": str(out)})  # fmt: skip
    distiller.save_extras(out, {**run_info, "method": distiller.name})


def _run_info(
    settings: RunSettings, data: str | Path, student_source: str, teacher_ref: str | Path | None, teacher: Any,
    context: DistributedContext,
) -> dict[str, Any]:  # fmt: skip
    """What identifies a run besides the distiller's config (checked on resume, recorded in provenance)."""
    from pocketgan.distill.data import dataset_fingerprint

    digest = teacher.manifest.weights_sha256 if teacher is not None else None
    if teacher is not None and digest is None and Path(str(teacher_ref)).is_file():  # a checkpoint file
        from pocketgan.core.fsio import sha256_file

        digest = sha256_file(teacher_ref)
    return {
        "student_source": student_source,
        "teacher_source": str(teacher_ref) if teacher is not None else None,
        "teacher_sha256": digest,
        "data": str(data),
        "data_fingerprint": context.main_first(lambda: dataset_fingerprint(data)),
        "size": settings.size,
        "direction": settings.direction,
        "augment": settings.augment,
    }


def _perceptual_network(
    distiller_cls: type[Distiller], perceptual: str | None, data: str | Path, context: DistributedContext,
    progress: ProgressCallback | None,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The feature network a method needs (rank 0 trains or reads it first), and its label for the provenance.

    The run identity records the network's content key (``FeatureNetwork.key``), not its name.
    """
    if not distiller_cls.needs_perceptual:
        if perceptual is not None and context.is_main:
            warnings.warn(f"--perceptual is not used by {distiller_cls.name}", stacklevel=3)
        return None, {}
    from pocketgan.distill.features import load_feature_network

    shown = progress if context.is_main else None
    network = context.main_first(lambda: load_feature_network(perceptual, data=data, progress=shown))
    return network, {"perceptual_network": network.name}


def load_trainable_generator(ref: str, arch: str | None = None) -> tuple[nn.Module, str]:
    """A generator to train: from a model dir or checkpoint (its weights), or an arch reference (pix2pix init)."""
    from pocketgan.distill.pix2pix import init_pix2pix_weights
    from pocketgan.models import load_model

    loaded = load_model(ref, arch)
    if not Path(str(ref)).exists() and loaded.model.io.input_kind != "latent":  # StyleGAN2 has its own init
        init_pix2pix_weights(loaded.model)
    return loaded.model, str(ref)


def check_teacher_dir(ref: str | Path) -> None:
    """A teacher must be a trained model directory (import a ``.pth`` first with ``pocketgan teacher --steps 0``)
    or a StyleGAN2 checkpoint file (rosinality ``.pt``, NVlabs ``.pkl``: read through the StyleGAN2 importer)."""
    from pocketgan.distill.stylegan2.discriminator_io import is_stylegan2_checkpoint

    if not Path(str(ref)).is_dir() and not is_stylegan2_checkpoint(ref):
        raise PocketganError(
            f"--teacher {ref}: expected a model directory (train one with `pocketgan teacher`, or import a .pth "
            "with `pocketgan teacher --arch FILE --init-arch ARCH --steps 0 --out DIR`) or a StyleGAN2 .pt/.pkl"
        )


def load_teacher(ref: str | Path) -> Any:
    """The teacher model directory (or StyleGAN2 checkpoint file) ``ref`` as a :class:`~pocketgan.models.LoadedModel`."""
    from pocketgan.models import load_model

    check_teacher_dir(ref)
    return load_model(ref, "stylegan2" if Path(str(ref)).is_file() else None)


def _import_model(ref: str, arch: str | None, out: str | Path) -> Path:
    """``--steps 0``: copy a model directory or checkpoint into ``out`` as a model directory."""
    from pocketgan.models import load_model, save_model

    if not Path(ref).exists():
        raise PocketganError(
            f"--steps 0 imports an existing model: give --arch a model directory or a checkpoint file "
            f"with --init-arch (got {ref!r})"
        )
    for source, target in [(ref, Path(out))] + [(path, Path(out) / name) for name in COMPANION_DIRS
                                                 if (path := companion_path(ref, name))]:  # fmt: skip
        loaded = load_model(source, arch if Path(source).is_file() else None)
        provenance = {**loaded.manifest.provenance, "method": "import", "source": str(source), "steps": 0}
        provenance.pop("created_at", None)
        provenance.pop("name", None)
        save_model(loaded.model, target, provenance=provenance)
    if loaded.model.io.input_kind == "latent":  # a StyleGAN2: keep its discriminator (NICKEL trains it on)
        from pocketgan.distill.stylegan2.discriminator_io import import_discriminator

        import_discriminator(ref, out)
    return Path(out)
