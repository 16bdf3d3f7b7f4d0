"""The cached stages: dataset, teacher, feature network, students, pruned model.

Each takes ``build``: ``True`` builds what the cache lacks; ``False`` (a stage that
``--from``/``--only`` skips) only looks its result up and raises :class:`NotBuilt` without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pocketgan.config import RunConfig, StudentConfig, TeacherConfig
from pocketgan.console import console, print_trained
from pocketgan.core.errors import PocketganError
from pocketgan.core.keys import cache_key
from pocketgan.pipeline.cache import NotBuilt, data_code, is_model_dir, prune_code, source_key, training_code
from pocketgan.pipeline.context import Run
from pocketgan.pipeline.records import FeatureRecord, ModelRecord


def training_settings(config: RunConfig, section: TeacherConfig | StudentConfig) -> dict[str, Any]:
    """The :class:`~pocketgan.distill.trainer.RunSettings` fields of the teacher or a student."""
    return dict(steps=section.steps, batch_size=section.batch, lr=section.lr, seed=config.seed, size=config.size,
                direction=config.data.direction, options=dict(section.options))  # fmt: skip


def stage_data(run: Run, build: bool = True) -> None:
    """Use ``data.path``, or build the embedded dataset into the cache."""
    from pocketgan.distill.data import build_dataset, dataset_fingerprint
    from pocketgan.distill.data.builders import get_builder

    data = run.config.data
    if data.path:
        run.data_dir = Path(data.path)
        if not run.data_dir.is_dir():
            raise PocketganError(f"data.path {run.data_dir}: no such directory")
    else:
        options = dict(size=run.size, count=data.count, val_count=data.val_count, seed=run.config.seed, **data.options)
        builder = get_builder(data.builder)
        key = cache_key("data", {"builder": data.builder, **options}, code=data_code(builder.build.__module__))
        run.data_dir = run.cached_dir("data", key)
        if (run.data_dir / "dataset.json").exists():
            run.note_cached("dataset", run.data_dir)
        elif not build:
            raise NotBuilt(f"no dataset in {run.data_dir}")
        else:
            build_dataset(data.builder, run.data_dir, progress=run.progress, **options)
    run.data_key = dataset_fingerprint(run.data_dir)
    console.print(f"dataset: {run.data_dir} (fingerprint {run.data_key[:12]})")


def stage_teacher(run: Run, build: bool = True) -> None:
    """Train the teacher (``teacher.method``: pix2pix or cyclegan; or import ``teacher.from``) into the cache."""
    from pocketgan.distill.base import get_distiller
    from pocketgan.distill.trainer import train_teacher

    section = run.config.teacher
    settings = training_settings(run.config, section)
    code = training_code(get_distiller(section.method).__module__)
    if section.source:
        imported = source_key(section.source) or section.source
        key = cache_key("teacher", {"arch": section.arch, "from": section.source}, imported, code=code)
    else:
        key = cache_key("teacher", {"arch": section.arch, "method": section.method, **settings}, run.data_key,
                        code=code)  # fmt: skip
    target = run.cached_dir("teacher", key)
    if is_model_dir(target):
        run.note_cached("teacher", target)
    elif not build:
        raise NotBuilt(f"no teacher in {target}")
    elif section.source:
        train_teacher(None, target, arch=section.source, init_arch=section.arch, steps=0, progress=run.progress)
    else:
        print_trained(train_teacher(run.data_dir, target, arch=section.arch, method=section.method,
                                    progress=run.progress, **settings))  # fmt: skip
    method = "imported" if section.source else section.method
    run.models["teacher"] = ModelRecord(name="teacher", dir=target, method=method, key=key, arch=section.arch)


def stage_features(run: Run, build: bool = True) -> None:
    """The feature network for OMGD's perceptual losses and for FID/KID: the dataset's own by default."""
    from pocketgan.distill.features import load_feature_network
    from pocketgan.distill.features.domain import DomainConfig, domain_network_path

    section = run.config.features
    if section.network:
        network = load_feature_network(section.network, data=run.data_dir, progress=run.progress)
        run.feature = FeatureRecord(ref=section.network, name=network.name, key=network.key)
        return
    config = DomainConfig(steps=section.steps)
    path = domain_network_path(run.data_dir, config=config)
    if path.exists():
        run.note_cached("feature network", path)
    elif not build:
        raise NotBuilt(f"no feature network at {path}")
    network = load_feature_network(None, data=run.data_dir, domain_config=config, progress=run.progress)
    run.feature = FeatureRecord(ref=str(path), name=network.name, key=network.key)
    console.print(f"feature network: {network.name} (key {network.key[:12]})")


def stage_students(run: Run, build: bool = True) -> None:
    """Distill every student of the recipe from the teacher."""
    for entry in run.config.students:
        distill_one(run, entry, build)


def distill_one(run: Run, entry: StudentConfig, build: bool) -> None:
    """One student: from the cache, or distilled now."""
    from pocketgan.distill.api import resolve_method
    from pocketgan.distill.trainer import distill_student

    teacher, settings = run.models["teacher"], training_settings(run.config, entry)
    distiller = resolve_method(entry.method, teacher.dir)  # kd of a StyleGAN2 teacher is CAGAN's KD
    perceptual = run.feature if distiller.needs_perceptual and run.feature else None
    inputs = [teacher.key, run.data_key, perceptual.key if perceptual else "",
              (source_key(entry.student) if entry.student else None) or ""]
    identity = {"method": entry.method, "student": entry.student, **settings}
    key = cache_key("student", identity, *inputs, code=training_code(distiller.__module__))
    target = run.cached_dir("students", key)
    arch = entry.student or uniform_student(entry)
    console.print(f"[bold]{entry.name}[/]: {entry.method} → {arch}")
    if is_model_dir(target):
        run.note_cached(entry.name, target)
    elif not build:
        raise NotBuilt(f"no {entry.name} in {target}")
    else:
        print_trained(distill_student(entry.method, teacher.dir, entry.student, run.data_dir, target,
                                      perceptual=perceptual.ref if perceptual else None, progress=run.progress,
                                      **settings))  # fmt: skip
    run.models[entry.name] = ModelRecord(name=entry.name, dir=target, method=entry.method, key=key, arch=arch)


def uniform_student(entry: StudentConfig) -> str:
    """How a student with no ``student`` is made: the teacher pruned uniformly to ``options.ratio``."""
    return f"teacher, uniform P={entry.options['ratio']:g}"


def pruned_name(student: str) -> str:
    """The name of the pruned copy of ``student``."""
    return f"{student}-pruned"


def stage_prune(run: Run, build: bool = True) -> None:
    """Optionally prune one student further (the ``prune`` section)."""
    from pocketgan.models import load_model, save_model
    from pocketgan.models.prune import prune_model

    section = run.config.prune
    if section is None:
        console.print("no prune section in the recipe: skipped")
        return
    source, targets = run.models[section.student], section.target()
    settings = {**targets, "importance": section.importance, "size": run.size}
    key = cache_key("prune", settings, source.key, code=prune_code())
    target, name = run.cached_dir("prune", key), pruned_name(section.student)
    if is_model_dir(target):
        run.note_cached(name, target)
    elif not build:
        raise NotBuilt(f"no {name} in {target}")
    else:
        result = prune_model(load_model(source.dir).model, importance=section.importance,
                             input_size=(run.size, run.size), progress=run.progress, **targets)  # fmt: skip
        provenance = {"method": "prune", "source": str(source.dir), "ratio": result.ratio, **targets}
        save_model(result.model, target, profile=result.after.to_profile(), provenance=provenance)
    run.models[name] = ModelRecord(name=name, dir=target, method=f"{source.method}+prune", key=key, arch=source.arch)
