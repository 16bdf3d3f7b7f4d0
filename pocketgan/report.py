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


def write_markdown(out_dir: Path, results: dict[str, Any], commands: list[str], notes: list[str]) -> Path:
    """``report.md`` with the table, the figures, notes and the commands that reproduce the run."""
    feature = results.get("feature_network", "?")
    host = results.get("host", {})
    parts = [
        f"# pocketgan run: {results['recipe']['name']}",
        "",
        f"Dataset `{results.get('dataset', '?')}` at {results['recipe']['size']}×{results['recipe']['size']} px; "
        f"MACs counted by fvcore at 1×3×{results['recipe']['size']}×{results['recipe']['size']} "
        "(1 fused multiply-add = 1 MAC; ConvTranspose over input positions). "
        f"Latency: onnxruntime {host.get('onnxruntime', '')} on {host.get('cpu', 'this host')}, "
        f"batch {results['recipe']['bench']['batch']}, {results['recipe']['bench']['threads']} threads. "
        f"FID and KID use the feature network **{feature}** (not InceptionV3: not comparable with papers); "
        "PSNR/SSIM against the ground truth (GT) and the teacher.",
        "",
        markdown_table(table_rows(results)),
        "",
        *baseline_note(results),
        "![samples](grid.png)",
        "",
        "![pareto](pareto.png)",
        "",
    ]
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
