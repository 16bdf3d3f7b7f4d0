"""The run report: ``results.json``, ``report.md``, an image grid and a Pareto plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.console import format_count
from pocketgan.core.fsio import atomic_path, write_json_atomic

#: The results table's columns before the metrics: (title, row key).
COLUMNS = [
    ("model", "model"),
    ("method", "method"),
    ("MACs", "macs"),
    ("params", "params"),
    ("compression", "compression"),
    ("ORT p50 ms", "latency_p50_ms"),
    ("ORT p90 ms", "latency_p90_ms"),
    ("FPS", "fps"),
    ("% of compute limit", "compute_limit_pct"),
    ("speedup ÷ MAC reduction", "speedup_per_mac_reduction"),
]


def format_cell(key: str, value: Any) -> str:
    """Human formatting for one of the table's non-metric cells (:data:`COLUMNS`)."""
    if value is None:
        return "–"
    if key in ("macs", "params"):
        return format_count(value)
    if key == "compression":
        return f"{value * 100:.1f}% ({1 / max(1 - value, 1e-9):.1f}×)"
    if key in ("latency_p50_ms", "latency_p90_ms", "fps"):
        return f"{value:.2f}" if value != float("inf") else "∞"
    if key == "compute_limit_pct":
        return f"{value:.1f}%"
    if key == "speedup_per_mac_reduction":
        return f"{value:.2f}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The results table in Markdown: :data:`COLUMNS`, then the registered metrics' report columns
    (:func:`pocketgan.distill.metrics.report_columns`: title, row key, format)."""
    from pocketgan.distill.metrics import report_columns

    metrics = report_columns()
    titles = [title for title, _ in COLUMNS] + [title for title, *_ in metrics]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for row in rows:
        cells = [format_cell(key, row.get(key)) for _, key in COLUMNS]
        cells += [metric.render(row.get(key), fmt) for _, key, metric, fmt in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the results table: the teacher, the baselines (e.g. copy-the-input), then the students."""
    models = list(results["models"])
    return models[:1] + list(results.get("baselines") or []) + models[1:]


GRID_CELL_INCHES = 2.4
"""Side of one grid image (at 120 dpi: 288 px, so a 64-px crop is shown 4.5× and its style is easy to judge)."""


def save_image_grid(path: Path, columns: dict[str, list[np.ndarray]], cell: float = GRID_CELL_INCHES) -> Path:
    """Save a grid: one column per entry of ``columns`` (title → uint8 HWC RGB images), one row per sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = list(columns)
    n_rows = min(len(v) for v in columns.values())
    fig, axes = plt.subplots(n_rows, len(titles), figsize=(cell * len(titles), cell * n_rows), squeeze=False)
    for c, title in enumerate(titles):
        for r in range(n_rows):
            ax = axes[r][c]
            ax.imshow(columns[title][r], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=11)
    fig.tight_layout(pad=0.3)
    _save_figure(fig, path)
    return path


def save_pareto_plot(path: Path, rows: list[dict[str, Any]], quality_key: str, quality_label: str) -> Path:
    """Quality against ORT latency and against MACs, one point per model, labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import EngFormatter, NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (x_key, x_label) in zip(axes, (("latency_p50_ms", "ORT latency p50 (ms)"), ("macs", "MACs (fvcore)"))):
        points = [(r[x_key], r[quality_key], r["model"]) for r in rows if r.get(x_key) and r.get(quality_key) is not None]
        for x, y, label in points:
            ax.scatter([x], [y], s=30)
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(x_label)
        ax.set_ylabel(quality_label)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"{quality_label} vs cost ({_better_corner(quality_key)} is better)")
    fig.tight_layout()
    _save_figure(fig, path)
    return path


def _better_corner(quality_key: str) -> str:
    """Where the good models are on a quality-vs-cost plot: lower-left for a metric where lower is better."""
    from pocketgan.distill.metrics import METRICS

    key = quality_key.removesuffix("_teacher")
    higher = key in METRICS and METRICS.get(key).higher_is_better
    return "upper-left" if higher else "lower-left"


def _save_figure(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_results(out_dir: Path, results: dict[str, Any]) -> Path:
    """``results.json``: the recipe, every model's figures, host and timings."""
    return write_json_atomic(out_dir / "results.json", results)


IMAGE_FIGURES = (("samples", "grid.png"), ("pareto", "pareto.png"))
"""The figures of an image-to-image run's report: (alt text, file)."""
LATENT_FIGURES = (("samples: the same latents for every model", "grid.png"),
                  ("discriminator logits over training", "logits.png"), ("FID over training", "fid_curve.png"),
                  ("pareto", "pareto.png"))  # fmt: skip
"""The figures of an unconditional (StyleGAN2) run's report, the papers' panels first."""


def measurement_note(results: dict[str, Any]) -> str:
    """The report's paragraph on how every number was measured (input, MAC convention, latency host, metrics)."""
    recipe, host, feature = results["recipe"], results.get("host", {}), results.get("feature_network", "?")
    size = recipe["size"]
    latency = (f"Latency: onnxruntime {host.get('onnxruntime', '')} on {host.get('cpu', 'this host')}, "
               f"batch {recipe['bench']['batch']}, {recipe['bench']['threads']} threads. ")  # fmt: skip
    latency += limit_note(host)
    if results.get("latent"):
        z_dim = results["latent"]["z_dim"]
        return (f"Dataset `{results.get('dataset', '?')}` at {size}×{size} px; generators make images from a latent "
                f"z (1×{z_dim}); MACs counted by fvcore for one z, mapping + synthesis (1 fused multiply-add = 1 MAC; "
                "the upsampling ConvTranspose over its input positions, so about half the output-position count "
                "some papers quote: see `pocketgan profile --convention`). " + latency +
                f"FID and KID use the feature network **{feature}** (not InceptionV3: not comparable with papers), "
                f"{results['latent']['samples']} samples against as many held-out images; PSNR/SSIM (teacher) compare "
                "each student's image with the teacher's for the same z and noise.")  # fmt: skip
    return (f"Dataset `{results.get('dataset', '?')}` at {size}×{size} px; "
            f"MACs counted by fvcore at 1×3×{size}×{size} (1 fused multiply-add = 1 MAC; ConvTranspose over input "
            "positions). " + latency +
            f"FID and KID use the feature network **{feature}** (not InceptionV3: not comparable with papers); "
            "PSNR/SSIM against the ground truth (GT) and the teacher.")  # fmt: skip


def limit_note(host: dict[str, Any]) -> str:
    """How the "% of compute limit" and "speedup ÷ MAC reduction" columns were computed (empty without a limit)."""
    limit = host.get("compute_limit")
    if not limit:
        return ""
    return (f"% of compute limit = MACs ÷ (p50 × {limit['fp32_gmacs']:.0f} GMAC/s, this host's fastest fp32 GEMM at "
            f"{limit['threads']} threads); speedup ÷ MAC reduction = (teacher p50 ÷ p50) ÷ (teacher MACs ÷ MACs). ")


def write_markdown(out_dir: Path, results: dict[str, Any], commands: list[str], notes: list[str]) -> Path:
    """``report.md`` with the table, the figures, notes and the commands that reproduce the run.

    An unconditional run (``results["latent"]``) also gets the training-balance table (discriminator
    logits, :func:`balance_table`) and the papers' panels (:data:`LATENT_FIGURES`) that were drawn.
    """
    latent = bool(results.get("latent"))
    figures = [(alt, name) for alt, name in (LATENT_FIGURES if latent else IMAGE_FIGURES)
               if not latent or (out_dir / name).exists()]  # fmt: skip
    parts = [
        f"# pocketgan run: {results['recipe']['name']}",
        "",
        measurement_note(results),
        "",
        markdown_table(table_rows(results)),
        "",
        *baseline_note(results),
        *balance_table(results.get("training") or {}),
    ]
    for alt, name in figures:
        parts += [f"![{alt}]({name})", ""]
    if notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    parts += ["## Reproduce", "", "```bash"] + commands + ["```", ""]
    path = out_dir / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts))
    return path


def baseline_note(results: dict[str, Any]) -> list[str]:
    """The explanation of the baseline rows under the table (none without baselines)."""
    if not results.get("baselines"):
        return []
    return ["*copy the input*: the input image itself scored against the ground truth (meaningful only when input "
            "and output are the same kind of image); a model below it has learned nothing.", ""]  # fmt: skip


def load_results(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / "results.json").read_text())


# ---------------------------------------------------------------------------------------------- StyleGAN2 panels

LOGIT_SERIES = (
    ("D_real", "D(real)", "tab:blue", "-"), ("D_fake", "D(fake)", "tab:red", "-"),
    ("Dt_real", "teacher D(real)", "tab:blue", ":"), ("Dt_fake", "teacher D(fake)", "tab:red", ":"),
)  # fmt: skip
"""The logged discriminator logits (``train/metrics.jsonl`` keys) a logits panel draws: key, label, colour, line."""
TAIL_FRACTION = 0.25
"""The balance table averages the logits over the last quarter of the logged steps."""


def logit_gap(log: list[dict[str, Any]], real: str = "D_real", fake: str = "D_fake") -> float | None:
    """Mean ``D(real) − D(fake)`` over the last :data:`TAIL_FRACTION` of a training log (``None``: not logged).

    A balanced adversarial game keeps it small; a discriminator that wins separates them and the gap grows."""
    rows = [r for r in log if r.get(real) is not None and r.get(fake) is not None]
    if not rows:
        return None
    tail = rows[-max(1, int(round(len(rows) * TAIL_FRACTION))):]
    return float(np.mean([r[real] - r[fake] for r in tail]))


def balance_table(training: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown lines: per model with a logit log, the final logit gap of its discriminator and the teacher's."""
    rows = [(name, logit_gap(t.get("logits") or []), logit_gap(t.get("logits") or [], "Dt_real", "Dt_fake"))
            for name, t in training.items() if t.get("logits")]  # fmt: skip
    if not rows:
        return []
    cell = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    lines = ["Discriminator logit gap D(real) − D(fake), mean of the last quarter of training "
             "(smaller: more balanced):", "", "| model | own D | teacher's D |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {name} | {cell(own)} | {cell(teacher)} |" for name, own, teacher in rows]
    return lines + [""]


def save_logit_plot(path: Path, logs: dict[str, list[dict[str, Any]]]) -> Path:
    """One panel per model: its discriminator's (and the teacher discriminator's) logits on real and fake by step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name, log in logs.items() if log]
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.0), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], names):
        for key, label, colour, style in LOGIT_SERIES:
            points = [(r["step"], r[key]) for r in logs[name] if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points), color=colour, linestyle=style, linewidth=1.2, label=label)
        ax.axhline(0.0, color="gray", linewidth=0.6)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("mean logit")
    labelled: dict[str, Any] = {}  # one legend for the figure: panels without a teacher D lack its series
    for ax in axes[0]:
        for line, label in zip(*ax.get_legend_handles_labels()):
            labelled.setdefault(label, line)
    fig.legend(list(labelled.values()), list(labelled), loc="upper center", ncol=len(labelled), fontsize=8,
               frameon=False)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    _save_figure(fig, path)
    return path


def save_curve_plot(path: Path, curves: dict[str, list[dict[str, Any]]], key: str, label: str) -> Path:
    """``key`` (e.g. FID) against the training step, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, curve in curves.items():
        points = [(r["step"], r[key]) for r in curve if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o", markersize=3, linewidth=1.2, label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)
    return path
