"""The report stage: ``results.json``, ``report.md`` (its "Reproduce" section generated), the grid, the Pareto plot.

An unconditional (StyleGAN2) run gets the papers' panels instead of the translation grid: samples of
every model from the same latents, each student's discriminator logits on real and fake over
training (``train/metrics.jsonl`` of its training run) and FID over training (the eval stage's curve).
"""

from __future__ import annotations

from typing import Any

from pocketgan import __version__
from pocketgan.console import console
from pocketgan.pipeline.context import Run
from pocketgan.pipeline.measure import eval_dataset, is_latent_run
from pocketgan.pipeline.reproduce import reproduce_commands


def stage_report(run: Run, build: bool = True) -> None:
    """results.json, report.md, grid.png and pareto.png."""
    from pocketgan import report

    rows = [record.row() for record in run.models.values()]
    results = results_document(run, rows)
    baseline = copy_baseline(run)
    results["baselines"] = [baseline] if baseline else []
    if is_latent_run(run):
        results.update(latent_results(run))
        save_training_panels(run, results["training"])
        save_latent_grid(run)
    else:
        save_grid(run)
    report.write_results(run.out, results)
    report.save_pareto_plot(run.out / "pareto.png", rows, "fid", f"FID ({results['feature_network']})")
    report.write_markdown(run.out, results, run_commands(run), report_notes(run, rows))
    console.print(report.markdown_table(report.table_rows(results)))


COPY_BASELINE = "copy the input"
"""The baseline row's name: the input itself as the prediction (meaningful only when A and B share a domain)."""


def copy_baseline(run: Run) -> dict[str, Any] | None:
    """The copy-the-input row, when the dataset says its input and output are the same kind of image."""
    from pocketgan.core.fsio import read_json
    from pocketgan.distill.data.layouts import DATASET_JSON

    meta_path = run.data_dir / DATASET_JSON
    if not meta_path.is_file() or not read_json(meta_path).get("same_domain"):
        return None
    return copy_baseline_row(eval_dataset(run), run.config.eval.batch)


def copy_baseline_row(dataset: Any, batch: int = 16) -> dict[str, Any]:
    """PSNR/SSIM of each input itself against its ground truth, averaged over ``dataset`` (a paired split).

    Only meaningful when input and output are the same kind of image (photo → stylized photo):
    a model that does not beat it has learned nothing.
    """
    import torch

    from pocketgan.distill.quality import psnr_per_image, ssim_per_image

    psnr, ssim = [], []
    for start in range(0, len(dataset), batch):
        items = [dataset[i] for i in range(start, min(start + batch, len(dataset)))]
        inputs, targets = torch.stack([i["A"] for i in items]), torch.stack([i["B"] for i in items])
        psnr.append(psnr_per_image(inputs, targets))
        ssim.append(ssim_per_image(inputs, targets))
    return {"model": COPY_BASELINE, "method": "baseline (same domains only)", "eval_n": len(dataset),
            "psnr": float(torch.cat(psnr).mean()), "ssim": float(torch.cat(ssim).mean())}  # fmt: skip


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
    from pocketgan.distill.api import resolve_method
    from pocketgan.distill.features.domain import DomainConfig

    features = run.config.features
    feature = features.network
    if not feature and features.steps != DomainConfig.steps and run.feature:
        feature = run.feature.ref  # the verbs train the dataset's network with its defaults only
    teacher = run.models["teacher"].dir
    perceptual = sorted({s.method for s in run.config.students if resolve_method(s.method, teacher).needs_perceptual})
    return reproduce_commands(run.config, run.out, models=list(run.models), feature=feature,
                              perceptual_methods=perceptual)  # fmt: skip


def save_grid(run: Run, samples: int = 4) -> None:
    """input | ground truth | teacher | each student, on the first held-out (eval split) samples.

    On unaligned data the second column is an unrelated domain-B image, and is labelled so.
    """
    import numpy as np
    import torch

    from pocketgan import report

    dataset = eval_dataset(run)
    items = [dataset[i] for i in range(min(samples, len(dataset)))]
    inputs = torch.stack([item["A"] for item in items])

    def to_uint8(batch: torch.Tensor) -> list[np.ndarray]:
        array = ((batch.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        return list(array)

    target = "a B image (unpaired)" if getattr(dataset, "layout", "") == "unaligned" else "ground truth"
    columns = {"input": to_uint8(inputs), target: to_uint8(torch.stack([i["B"] for i in items]))}
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


def latent_results(run: Run) -> dict[str, Any]:
    """What ``results.json`` adds for an unconditional run: the latent size and every model's training curves."""
    from pocketgan.distill.run_log import read_run_log

    teacher = run.models["teacher"].loaded().model
    training = {name: {"logits": read_run_log(record.dir), "fid": record.curve} for name, record in run.models.items()}
    return {"latent": {"z_dim": int(teacher.io.z_dim), "samples": len(eval_dataset(run))}, "training": training}


def save_training_panels(run: Run, training: dict[str, dict[str, Any]]) -> None:
    """``logits.png`` (discriminator logits over training, per model that logged them) and ``fid_curve.png``."""
    from pocketgan import report

    logs = {name: t["logits"] for name, t in training.items() if t["logits"]}
    curves = {name: t["fid"] for name, t in training.items() if t["fid"]}
    label = f"FID ({run.feature.name if run.feature else '?'})"
    panels = {"logits.png": (logs, lambda path: report.save_logit_plot(path, logs)),
              "fid_curve.png": (curves, lambda path: report.save_curve_plot(path, curves, "fid", label))}  # fmt: skip
    for name, (data, draw) in panels.items():
        (run.out / name).unlink(missing_ok=True)  # a panel of an earlier run must not outlive its data
        if data:
            draw(run.out / name)


def save_latent_grid(run: Run, samples: int = 6) -> None:
    """held-out images | teacher | each student: one row per latent, the same latents (and noise) for every model."""
    import torch

    from pocketgan import report
    from pocketgan.distill.evaluation import eval_latents

    dataset = eval_dataset(run)
    count = min(samples, len(dataset))
    latents = eval_latents(count, int(run.models["teacher"].loaded().model.io.z_dim))
    columns = {"held-out images": to_uint8(torch.stack([dataset[i]["B"] for i in range(count)]))}
    with torch.inference_mode():
        for name, record in run.models.items():
            columns[name] = to_uint8(record.loaded().model.eval()(latents))
    report.save_image_grid(run.out / "grid.png", columns)


def to_uint8(batch: Any) -> list[Any]:
    """``N×3×H×W`` floats in ``[-1, 1]`` → ``H×W×3`` uint8 arrays (values outside clipped)."""
    array = ((batch.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return list(array)
