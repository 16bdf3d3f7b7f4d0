"""The report stage: ``results.json``, ``report.md`` (its "Reproduce" section generated), the grid, the Pareto plot."""

from __future__ import annotations

from typing import Any

from pocketgan import __version__
from pocketgan.console import console
from pocketgan.pipeline.context import Run
from pocketgan.pipeline.measure import eval_dataset
from pocketgan.pipeline.reproduce import reproduce_commands


def stage_report(run: Run, build: bool = True) -> None:
    """results.json, report.md, grid.png and pareto.png."""
    from pocketgan import report

    rows = [record.row() for record in run.models.values()]
    results = results_document(run, rows)
    report.write_results(run.out, results)
    save_grid(run)
    report.save_pareto_plot(run.out / "pareto.png", rows, "fid", f"FID ({results['feature_network']})")
    report.write_markdown(run.out, results, run_commands(run), report_notes(run, rows))
    console.print(report.markdown_table(rows))


def results_document(run: Run, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``results.json`` holds: the configuration, every model's figures, host, timings and keys."""
    feature = run.feature
    return {
        "recipe": run.config.to_dict(),
        "dataset": str(run.data_dir),
        "dataset_fingerprint": run.data_key,
        "feature_network": feature.name if feature else None,
        "feature_network_key": feature.key if feature else None,
        "host": run.host,
        "stage_seconds": run.timings,
        "stage_keys": run.keys,
        "cached_stages": run.cached,
        "models": rows,
        "eval": {name: record.eval for name, record in run.models.items()},
        "pocketgan_version": __version__,
    }


def run_commands(run: Run) -> list[str]:
    """The "Reproduce" commands of this run's configuration."""
    from pocketgan.distill.base import DISTILLERS
    from pocketgan.distill.features.domain import DomainConfig

    features = run.config.features
    feature = features.network
    if not feature and features.steps != DomainConfig.steps and run.feature:
        feature = run.feature.ref  # the verbs train the dataset's network with its defaults only
    perceptual = [name for name, distiller in DISTILLERS.items() if distiller.needs_perceptual]
    return reproduce_commands(run.config, run.out, models=list(run.models), feature=feature,
                              perceptual_methods=perceptual)  # fmt: skip


def save_grid(run: Run, samples: int = 6) -> None:
    """input | ground truth | teacher | each student, on the first validation samples."""
    import numpy as np
    import torch

    from pocketgan import report

    dataset = eval_dataset(run)
    items = [dataset[i] for i in range(min(samples, len(dataset)))]
    inputs = torch.stack([item["A"] for item in items])

    def to_uint8(batch: torch.Tensor) -> list[np.ndarray]:
        array = ((batch.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        return list(array)

    columns = {"input": to_uint8(inputs), "ground truth": to_uint8(torch.stack([i["B"] for i in items]))}
    with torch.inference_mode():
        for name, record in run.models.items():
            columns[name] = to_uint8(record.loaded().model(inputs))
    report.save_image_grid(run.out / "grid.png", columns)


def report_notes(run: Run, rows: list[dict[str, Any]]) -> list[str]:
    """Short observations for report.md: what was cached, and how students compare."""
    notes = []
    if run.cached:
        notes.append(f"reused from the cache: {', '.join(run.cached)}")
    teacher = next((r for r in rows if r["model"] == "teacher"), None)
    for row in rows:
        if teacher and row is not teacher and row.get("fid") is not None and teacher.get("fid"):
            ratio = row["fid"] / teacher["fid"]
            fewer = f"{row['compression'] * 100:.1f}% fewer MACs"
            notes.append(f"{row['model']}: FID {ratio:.2f}× the teacher's at {fewer}")
    if run.timings:
        notes.append("stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in run.timings.items()))
    return notes
