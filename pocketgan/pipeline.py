"""``pocketgan run``: data → teacher → distill → (prune) → profile → export → bench → eval → report.

Expensive stages (dataset, teacher, students, pruned models, the feature network) are
content-addressed: their output lives under ``$POCKETGAN_CACHE/pipeline/<stage>/<key>``
where the key hashes the stage's settings and its inputs' keys, so a second run reuses
what it already built and only changed stages run again. An interrupted training stage
resumes from its checkpoint. The run directory gets copies of the model directories,
the ONNX files, ``results.json``, ``report.md``, ``grid.png`` and ``pareto.png``.
"""

from __future__ import annotations

import shlex
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pocketgan import __version__
from pocketgan.console import console, format_count
from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import MODEL_JSON, MODEL_WEIGHTS
from pocketgan.core.fsio import atomic_path
from pocketgan.recipe import fingerprint


def cache_root() -> Path:
    """``$POCKETGAN_CACHE/pipeline`` (default ``~/.cache/pocketgan/pipeline``)."""
    import os

    return Path(os.environ.get("POCKETGAN_CACHE", Path.home() / ".cache" / "pocketgan")) / "pipeline"


@dataclass
class Run:
    """State of one pipeline run: the recipe, where things are, and what each stage produced."""

    recipe: dict[str, Any]
    out: Path
    recipe_path: str | None
    overrides: list[str]
    cache: Path = field(default_factory=cache_root)
    timings: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    data_dir: Path | None = None
    data_key: str = ""
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → {dir, method, key, ...}
    host: dict[str, Any] = field(default_factory=dict)
    feature_network: str | None = None
    feature_ref: str | None = None  # what distill and eval pass to load_feature_network
    eval_dataset: Any = None

    @property
    def size(self) -> int:
        return int(self.recipe["size"])

    def settings(self, section: dict[str, Any]) -> dict[str, Any]:
        """Training settings shared by the teacher and student stages."""
        return dict(
            steps=int(section["steps"]),
            batch_size=int(section.get("batch", 4)),
            lr=float(section.get("lr", 2e-4)),
            seed=int(self.recipe["seed"]),
            size=self.size,
            direction=self.recipe["data"].get("direction", "AtoB"),
            options=dict(section.get("options") or {}),
        )


def run_pipeline(
    recipe: dict[str, Any], out: str | Path, *, recipe_path: str | None = None, overrides: list[str] | None = None
) -> Path:
    """Run every stage of ``recipe`` into ``out``; returns the path of ``report.md``."""
    run = Run(recipe=recipe, out=Path(out), recipe_path=recipe_path, overrides=list(overrides or []))
    run.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    steps: list[tuple[str, Callable[[Run], Any]]] = [
        ("data", stage_data),
        ("teacher", stage_teacher),
        ("features", stage_features),
        ("students", stage_students),
        ("prune", stage_prune),
        ("profile", stage_profile),
        ("export", stage_export),
        ("bench", stage_bench),
        ("eval", stage_eval),
        ("report", stage_report),
    ]
    for index, (name, fn) in enumerate(steps, 1):
        with stage(run, name, index, len(steps)):
            fn(run)
    total = time.perf_counter() - started
    console.print(f"[bold green]done[/] in {total / 60:.1f} min → {run.out / 'report.md'}")
    return run.out / "report.md"


@contextmanager
def stage(run: Run, name: str, index: int, count: int) -> Iterator[None]:
    """Announce a stage, time it, and turn a failure into one line naming the stage and how to resume."""
    console.rule(f"[bold][{index}/{count}] {name}")
    started = time.perf_counter()
    try:
        yield
    except KeyboardInterrupt:
        raise PocketganError(f"interrupted in stage {name}; re-run `{rerun_command(run)}` to resume") from None
    except PocketganError as exc:
        raise PocketganError(f"stage {name} failed: {exc}; fix it and re-run `{rerun_command(run)}` to resume") from None
    except Exception as exc:  # unexpected: keep the type for debugging
        raise PocketganError(
            f"stage {name} failed: {type(exc).__name__}: {exc}; re-run `{rerun_command(run)}` to resume"
        ) from exc
    run.timings[name] = round(time.perf_counter() - started, 2)


def rerun_command(run: Run) -> str:
    parts = ["pocketgan", "run"] + ([run.recipe_path] if run.recipe_path else []) + ["--out", str(run.out)]
    return shlex.join(parts + run.overrides)


def cached_dir(run: Run, stage_name: str, key: str) -> Path:
    return run.cache / stage_name / key


def is_model_dir(path: Path) -> bool:
    return (path / MODEL_JSON).exists() and (path / MODEL_WEIGHTS).exists()


def note_cached(run: Run, what: str, path: Path) -> None:
    run.cached.append(what)
    console.print(f"{what}: [green]cached[/] ({path})")


# ---------------------------------------------------------------- stages


def stage_data(run: Run) -> None:
    """Use ``data.path``, or build the embedded dataset into the cache."""
    from pocketgan.distill.data import build_dataset, dataset_fingerprint

    data = run.recipe["data"]
    if data.get("path"):
        run.data_dir = Path(data["path"])
        if not run.data_dir.is_dir():
            raise PocketganError(f"data.path {run.data_dir}: no such directory")
    else:
        options = dict(size=run.size, count=int(data["count"]), val_count=int(data["val_count"]),
                       seed=int(run.recipe["seed"]))  # fmt: skip
        if data.get("photos"):
            options["photos"] = data["photos"]
        key = fingerprint("data", data["builder"], options)
        run.data_dir = cached_dir(run, "data", key)
        if (run.data_dir / "dataset.json").exists():
            note_cached(run, "dataset", run.data_dir)
        else:
            build_dataset(data["builder"], run.data_dir, **options)
    run.data_key = dataset_fingerprint(run.data_dir)
    console.print(f"dataset: {run.data_dir} (fingerprint {run.data_key[:12]})")


def stage_teacher(run: Run) -> None:
    """Train the pix2pix teacher (or import ``teacher.from``) into the cache."""
    from pocketgan.distill.trainer import train_teacher

    section = run.recipe["teacher"]
    settings = run.settings(section)
    key = fingerprint("teacher", section, settings, run.data_key, __version__)
    target = cached_dir(run, "teacher", key)
    if is_model_dir(target):
        note_cached(run, "teacher", target)
    elif section.get("from"):
        train_teacher(None, target, arch=str(section["from"]), init_arch=section["arch"], steps=0)
    else:
        train_teacher(run.data_dir, target, arch=section["arch"], **settings)
    run.models["teacher"] = {"dir": target, "method": "pix2pix" if not section.get("from") else "imported",
                             "key": key, "arch": section["arch"]}  # fmt: skip


def stage_features(run: Run) -> None:
    """The feature network for OMGD's perceptual losses and for FID/KID: the dataset's own by default."""
    from pocketgan.distill.features import load_feature_network
    from pocketgan.distill.features.domain import DomainConfig, domain_network_path

    section = run.recipe.get("features") or {}
    if section.get("network"):
        run.feature_ref = str(section["network"])
        run.feature_network = load_feature_network(run.feature_ref, data=run.data_dir).name
        return
    config = DomainConfig(steps=int(section.get("steps", DomainConfig.steps)))
    path = domain_network_path(run.data_dir, config=config)
    if path.exists():
        note_cached(run, "feature network", path)
    network = load_feature_network(None, data=run.data_dir, domain_config=config)
    run.feature_ref, run.feature_network = str(path), network.name


def stage_students(run: Run) -> None:
    """Distill every student of the recipe from the teacher."""
    from pocketgan.distill.base import get_distiller
    from pocketgan.distill.trainer import distill_student

    teacher = run.models["teacher"]
    for entry in run.recipe["students"]:
        settings = run.settings(entry)
        perceptual = run.feature_ref if get_distiller(entry["method"]).needs_perceptual else None
        key = fingerprint("student", entry, settings, teacher["key"], run.data_key,
                          Path(perceptual).name if perceptual else None)  # fmt: skip
        target = cached_dir(run, "students", key)
        console.print(f"[bold]{entry['name']}[/]: {entry['method']} → {entry['student']}")
        if is_model_dir(target):
            note_cached(run, entry["name"], target)
        else:
            distill_student(entry["method"], teacher["dir"], entry["student"], run.data_dir, target,
                            perceptual=perceptual, **settings)  # fmt: skip
        run.models[entry["name"]] = {"dir": target, "method": entry["method"], "key": key, "arch": entry["student"]}


def stage_prune(run: Run) -> None:
    """Optionally prune one student further (``prune`` section)."""
    from pocketgan.models import load_model, save_model
    from pocketgan.models.prune import prune_model

    section = run.recipe.get("prune")
    if not section:
        console.print("no prune section in the recipe: skipped")
        return
    source = run.models[section["student"]]
    targets = {k: section[k] for k in ("ratio", "target_rate", "target_macs") if k in section}
    key = fingerprint("prune", section, source["key"])
    target = cached_dir(run, "prune", key)
    name = f"{section['student']}-pruned"
    if is_model_dir(target):
        note_cached(run, name, target)
    else:
        result = prune_model(load_model(source["dir"]).model, importance=section.get("importance", "l1"),
                             input_size=(run.size, run.size), **targets)  # fmt: skip
        save_model(result.model, target, profile=result.after.to_profile(),
                   provenance={"method": "prune", "source": str(source["dir"]), "ratio": result.ratio, **targets})  # fmt: skip
    run.models[name] = {"dir": target, "method": f"{source['method']}+prune", "key": key, "arch": source["arch"]}


def stage_profile(run: Run) -> None:
    """fvcore MACs and params of every model; copy the model directories into the run."""
    from pocketgan.models import load_model
    from pocketgan.models.profile import profile_model

    teacher_macs = None
    for name, info in run.models.items():
        info["out_dir"] = copy_model_dir(info["dir"], run.out / "models" / name)
        info["loaded"] = load_model(info["out_dir"])  # loaded once; export, eval and the grid reuse it
        report = profile_model(info["loaded"].model, (1, 3, run.size, run.size))
        teacher_macs = teacher_macs or report.macs
        info.update(macs=report.macs, params=report.params, compression=1 - report.macs / teacher_macs)
        console.print(f"{name:<22} {format_count(report.macs)}MACs  {format_count(report.params)} params  "
                      f"-{info['compression'] * 100:.1f}% MACs")  # fmt: skip


def copy_model_dir(source: Path, target: Path) -> Path:
    """Copy a model directory's weights and manifest (not its training state) atomically."""
    with atomic_path(target, directory=True) as tmp:
        for name in (MODEL_WEIGHTS, MODEL_JSON):
            shutil.copy2(source / name, tmp / name)
    return target


def stage_export(run: Run) -> None:
    """ONNX export of every model with a parity check against PyTorch."""
    from pocketgan.export.api import export_model
    from pocketgan.export.job import ExportOptions

    section = run.recipe["export"]
    for name, info in run.models.items():
        options = ExportOptions(size=(run.size, run.size), opset=int(section.get("opset", 17)))
        sidecar = export_model(info["loaded"], section.get("format", "onnx"),
                               run.out / "onnx" / name, options)  # fmt: skip
        info["artifact"] = run.out / "onnx" / name / sidecar.file
        info["parity_max_abs"] = sidecar.parity.max_abs if sidecar.parity else None
        console.print(f"{name:<22} parity max |Δ| {info['parity_max_abs']:.1e} → {info['artifact']}")


def stage_bench(run: Run) -> None:
    """Interleaved ONNX Runtime latency of every exported model."""
    from pocketgan.runtime.cli import run_bench

    section = run.recipe["bench"]
    names = list(run.models)
    results = run_bench(
        [str(run.models[n]["artifact"]) for n in names],
        threads=section.get("threads"),
        batch=int(section.get("batch", 1)),
        size=(run.size, run.size),
        warmup_ms=float(section.get("warmup_ms", 300)),
        iterations=int(section.get("iterations", 30)),
        duration=float(section.get("duration", 2.0)),
        json_path=run.out / "bench.json",
    )
    for name, result in zip(names, results):
        run.models[name].update(latency_p50_ms=result.latency.p50_ms, latency_p90_ms=result.latency.p90_ms,
                                fps=result.throughput, latency_cv=result.latency.cv)  # fmt: skip
    run.host = {**results[0].host, **results[0].versions} if results else {}


def stage_eval(run: Run) -> None:
    """PSNR/SSIM vs ground truth and teacher, FID/KID with the named feature network."""
    from pocketgan.distill.data import open_dataset
    from pocketgan.distill.features import load_feature_network
    from pocketgan.distill.metrics import evaluate

    section = run.recipe["eval"]
    feature = load_feature_network(run.feature_ref, data=run.data_dir)
    dataset = open_dataset(run.data_dir, split=section.get("split", "val"), size=run.size,
                           direction=run.recipe["data"].get("direction", "AtoB"))  # fmt: skip
    teacher = run.models["teacher"]["loaded"].model
    run.feature_network = feature.name
    for name, info in run.models.items():
        model = info["loaded"].model
        report = evaluate(model, dataset, feature=feature, teacher=None if name == "teacher" else teacher,
                          batch_size=int(section.get("batch", 16)), model_name=name)  # fmt: skip
        info.update(report.row())
        info["eval"] = report.to_dict()
    run.eval_dataset = dataset


def stage_report(run: Run) -> None:
    """results.json, report.md, grid.png and pareto.png."""
    from pocketgan import report

    rows = []
    for name, info in run.models.items():
        row = {"model": name, **{k: v for k, v in info.items() if k not in ("dir", "out_dir", "artifact", "eval", "loaded")}}
        row.update(dir=str(info["out_dir"]), artifact=str(info["artifact"]))
        rows.append(row)
    results = {
        "recipe": run.recipe,
        "dataset": str(run.data_dir),
        "dataset_fingerprint": run.data_key,
        "feature_network": run.feature_network,
        "host": run.host,
        "stage_seconds": run.timings,
        "cached_stages": run.cached,
        "models": rows,
        "eval": {name: info.get("eval") for name, info in run.models.items()},
        "pocketgan_version": __version__,
    }
    report.write_results(run.out, results)
    save_grid(run)
    report.save_pareto_plot(run.out / "pareto.png", rows, "fid", f"FID ({results['feature_network']})")
    with atomic_path(run.out / "recipe.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(run.recipe, sort_keys=False))
    report.write_markdown(run.out, results, reproduce_commands(run), report_notes(run, rows))
    console.print(report.markdown_table(rows))


def save_grid(run: Run, samples: int = 6) -> None:
    """input | ground truth | teacher | each student, on the first validation samples."""
    import numpy as np
    import torch

    from pocketgan import report

    dataset = run.eval_dataset
    items = [dataset[i] for i in range(min(samples, len(dataset)))]
    inputs = torch.stack([item["A"] for item in items])

    def to_uint8(batch: torch.Tensor) -> list[np.ndarray]:
        array = ((batch.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        return list(array)

    columns = {"input": to_uint8(inputs), "ground truth": to_uint8(torch.stack([i["B"] for i in items]))}
    with torch.inference_mode():
        for name, info in run.models.items():
            columns[name] = to_uint8(info["loaded"].model(inputs))
    report.save_image_grid(run.out / "grid.png", columns)


def reproduce_commands(run: Run) -> list[str]:
    """The one command that reproduces the run, then the equivalent stage-by-stage commands."""
    recipe, size = run.recipe, str(run.size)
    seed = str(recipe["seed"])
    lines = ["# the whole run (the recipe is saved beside this report):",
             shlex.join(["pocketgan", "run", str(run.out / "recipe.yaml"), "--out", str(run.out)]),
             "", "# or stage by stage:"]  # fmt: skip
    data = recipe["data"]
    if not data.get("path"):
        lines.append(shlex.join(["pocketgan", "data", data["builder"], "--out", "data", "--size", size,
                                 "--count", str(data["count"]), "--val-count", str(data["val_count"]), "--seed", seed]))  # fmt: skip
    data_dir = data.get("path") or "data"
    teacher = recipe["teacher"]
    if teacher.get("from"):
        lines.append(shlex.join(["pocketgan", "teacher", "--arch", str(teacher["from"]), "--init-arch",
                                 teacher["arch"], "--steps", "0", "--out", "teacher"]))  # fmt: skip
    else:
        lines.append(shlex.join(["pocketgan", "teacher", "--data", data_dir, "--arch", teacher["arch"], "--out",
                                 "teacher", "--size", size, "--steps", str(teacher["steps"]), "--batch",
                                 str(teacher.get("batch", 4)), "--seed", seed]))  # fmt: skip
    for s in recipe["students"]:
        options = [f"--option={k}={v}" for k, v in (s.get("options") or {}).items()]
        lines.append(shlex.join(["pocketgan", "distill", "--method", s["method"], "--teacher", "teacher",
                                 "--student", s["student"], "--data", data_dir, "--out", s["name"], "--size", size,
                                 "--steps", str(s["steps"]), "--batch", str(s.get("batch", 4)), "--seed", seed,
                                 *options]))  # fmt: skip
    prune = recipe.get("prune")
    if prune:
        flag = next(k for k in ("ratio", "target_rate", "target_macs") if k in prune)
        lines.append(shlex.join(["pocketgan", "prune", prune["student"], "--out", f"{prune['student']}-pruned",
                                 f"--{flag.replace('_', '-')}", str(prune[flag]), "--size", size]))  # fmt: skip
    for name in run.models:
        lines.append(shlex.join(["pocketgan", "export", name, "--format", "onnx", "--out", f"onnx/{name}",
                                 "--size", size, size]))  # fmt: skip
    bench = recipe["bench"]
    lines.append(shlex.join(["pocketgan", "bench", *[f"onnx/{n}/model.onnx" for n in run.models], "--threads",
                             str(bench.get("threads")), "--iterations", str(bench.get("iterations")),
                             "--duration", str(bench.get("duration"))]))  # fmt: skip
    for name in run.models:
        teacher_flag = [] if name == "teacher" else ["--teacher", "teacher"]
        lines.append(shlex.join(["pocketgan", "eval", name, "--data", data_dir, *teacher_flag, "--size", size]))
    return lines


def report_notes(run: Run, rows: list[dict[str, Any]]) -> list[str]:
    """Short observations for report.md: what was cached, and how students compare."""
    notes = []
    if run.cached:
        notes.append(f"reused from the cache: {', '.join(run.cached)}")
    teacher = next((r for r in rows if r["model"] == "teacher"), None)
    for row in rows:
        if teacher and row is not teacher and row.get("fid") is not None and teacher.get("fid"):
            ratio = row["fid"] / teacher["fid"]
            notes.append(f"{row['model']}: FID {ratio:.2f}× the teacher's at {row['compression'] * 100:.1f}% fewer MACs")
    notes.append("stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in run.timings.items()))
    return notes
