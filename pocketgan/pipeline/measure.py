"""The run-directory stages: profile, export, bench and eval of every model.

Their outputs go into the run directory and ``RUN/stages.json`` (with the stage's key:
its settings, the models' keys and its code version), from where ``--from``/``--only``
reuse them when the key still matches.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from pocketgan.console import console, format_count
from pocketgan.core.contract import MODEL_JSON, MODEL_WEIGHTS
from pocketgan.core.fsio import atomic_path
from pocketgan.core.keys import cache_key
from pocketgan.pipeline.cache import MEASURE_CODE, versions
from pocketgan.pipeline.context import Run
from pocketgan.pipeline.records import ModelRecord

PROFILE_FIELDS = ("out_dir", "macs", "params", "compression")
EXPORT_FIELDS = ("artifact", "parity_max_abs")
BENCH_FIELDS = ("latency_p50_ms", "latency_p90_ms", "fps", "latency_cv", "compute_limit_pct", "speedup_per_mac_reduction")
EVAL_FIELDS = ("metrics", "eval", "curve")


def stage_key(run: Run, stage: str, settings: dict[str, Any], *inputs: str) -> str:
    """The key of a run-directory stage: its settings, every model's name and key, ``inputs`` and its code."""
    models = [f"{name}:{record.key}" for name, record in run.models.items()]
    run.keys[stage] = cache_key(stage, settings, *models, *inputs, code=versions(*MEASURE_CODE[stage]))
    return run.keys[stage]


def stage_profile(run: Run, build: bool = True) -> None:
    """fvcore MACs and params of every model; copy the model directories into the run."""
    from pocketgan.models import load_model
    from pocketgan.models.profile import profile_model

    key = stage_key(run, "profile", {"size": run.size})
    if not build:
        run.state.restore("profile", key, run.models)
        return
    teacher_macs = None
    for name, record in run.models.items():
        record.out_dir = copy_model_dir(record.dir, run.out / "models" / name)
        record.set_loaded(load_model(record.out_dir))  # loaded once; export, eval and the grid reuse it
        report = profile_model(record.loaded().model, profile_input(record.loaded().model, run.size))
        teacher_macs = teacher_macs or report.macs
        record.macs, record.params, record.compression = report.macs, report.params, 1 - report.macs / teacher_macs
        console.print(f"{name:<22} {format_count(report.macs)}MACs  {format_count(report.params)} params  "
                      f"-{record.compression * 100:.1f}% MACs")  # fmt: skip
    run.state.save("profile", key, run.models, PROFILE_FIELDS)


def is_latent_run(run: Run) -> bool:
    """Whether the run's teacher is a latent-input generator (StyleGAN2): its models make images from ``z``."""
    return bool(run.models["teacher"].loaded().model.io.is_latent)


def profile_input(model: Any, size: int) -> tuple[int, ...]:
    """The input shape MACs are counted at: ``(1, z_dim)`` for a latent-input generator, else ``(1, 3, size, size)``."""
    io = model.io
    return (1, int(io.z_dim)) if io.is_latent else (1, 3, size, size)


def copy_model_dir(source: Path, target: Path) -> Path:
    """Copy a model directory's weights and manifest (not its training state) atomically."""
    with atomic_path(target, directory=True) as tmp:
        for name in (MODEL_WEIGHTS, MODEL_JSON):
            shutil.copy2(source / name, tmp / name)
    return target


def stage_export(run: Run, build: bool = True) -> None:
    """Export every model (ONNX) with a parity check against PyTorch."""
    from pocketgan.export.api import export_model
    from pocketgan.export.job import ExportOptions

    section = run.config.export
    key = stage_key(run, "export", {"format": section.format, "opset": section.opset, "size": run.size})
    if not build:
        run.state.restore("export", key, run.models)
        return
    for name, record in run.models.items():
        options = ExportOptions(size=(run.size, run.size), opset=section.opset)
        sidecar = export_model(record.loaded(), section.format, run.out / "onnx" / name, options, progress=run.progress)
        record.artifact = run.out / "onnx" / name / sidecar.file
        record.parity_max_abs = sidecar.parity.max_abs if sidecar.parity else None
        parity = (f"parity max |Δ| {record.parity_max_abs:.1e}" if sidecar.parity
                  else f"parity {sidecar.extra.get('parity', 'not measured')}")  # fmt: skip
        console.print(f"{name:<22} {parity} → {record.artifact}")
    run.state.save("export", key, run.models, EXPORT_FIELDS)


def stage_bench(run: Run, build: bool = True) -> None:
    """Interleaved ONNX Runtime latency of every exported model."""
    from pocketgan.runtime.cli import run_bench

    section = run.config.bench
    key = stage_key(run, "bench", dataclasses.asdict(section), run.keys["export"])
    if not build:
        run.host = run.state.restore("bench", key, run.models).get("host", {})
        return
    names = list(run.models)
    size = None if is_latent_run(run) else (run.size, run.size)  # a latent artifact draws z of its own size
    results = run_bench([str(run.models[n].artifact) for n in names], threads=section.threads, batch=section.batch,
                        size=size, warmup_ms=section.warmup_ms, iterations=section.iterations,
                        duration=section.duration, json_path=run.out / "bench.json")  # fmt: skip
    for name, result in zip(names, results):
        record = run.models[name]
        record.latency_p50_ms, record.latency_p90_ms = result.latency.p50_ms, result.latency.p90_ms
        record.fps, record.latency_cv = result.throughput, result.latency.cv
        efficiency = result.efficiency  # against the first artifact: the teacher
        record.compute_limit_pct = efficiency.percent_of_limit if efficiency else None
        record.speedup_per_mac_reduction = efficiency.speedup_per_mac_reduction if efficiency else None
    run.host = {**results[0].host, **results[0].versions} if results else {}
    run.state.save("bench", key, run.models, BENCH_FIELDS, {"host": run.host})


def eval_dataset(run: Run) -> Any:
    """The evaluation split (opened once): the real images of an unconditional run, the pairs of a translation one."""
    from pocketgan.distill.data import open_dataset

    if run.eval_dataset is None:
        layout = "images" if is_latent_run(run) else None  # a latent model's data is single images, always
        run.eval_dataset = open_dataset(run.data_dir, split=run.config.eval.split, size=run.size,
                                        direction=run.config.data.direction, layout=layout)  # fmt: skip
    return run.eval_dataset


def stage_eval(run: Run, build: bool = True) -> None:
    """PSNR/SSIM vs ground truth and teacher, FID/KID with the run's feature network, FID over training."""
    from pocketgan.distill.features import load_feature_network
    from pocketgan.distill.metrics import evaluate

    assert run.feature is not None
    section = run.config.eval
    settings = {**dataclasses.asdict(section), "size": run.size, "direction": run.config.data.direction}
    key = stage_key(run, "eval", settings, run.data_key, run.feature.key)
    if not build:
        run.state.restore("eval", key, run.models)
        return
    feature = load_feature_network(run.feature.ref, data=run.data_dir, progress=run.progress)
    dataset = eval_dataset(run)
    teacher = run.models["teacher"].loaded().model
    for name, record in run.models.items():
        report = evaluate(record.loaded().model, dataset, feature=feature,
                          teacher=None if name == "teacher" else teacher, batch_size=section.batch,
                          model_name=name, progress=run.progress)  # fmt: skip
        record.metrics, record.eval = report.row(), report.to_dict()
        record.curve = fid_over_training(run, record, dataset, feature)
    run.state.save("eval", key, run.models, EVAL_FIELDS)


def fid_over_training(run: Run, record: ModelRecord, dataset: Any, feature: Any) -> list[dict[str, Any]]:
    """FID of each training snapshot the model's run left (option ``snapshot_every``; none: ``[]``)."""
    from pocketgan.distill.evaluation import evaluate_over_training
    from pocketgan.distill.run_log import list_snapshots

    snapshots = list_snapshots(record.dir)
    if not snapshots:
        return []
    return evaluate_over_training(record.loaded().model, snapshots, dataset, feature=feature,
                                  batch_size=run.config.eval.batch, progress=run.progress)  # fmt: skip
