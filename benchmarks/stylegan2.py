"""StyleGAN2 compression benchmark: KD, ITGC, DiME, NICKEL and NICKEL & DiME at P = 0.7, 0.8, 0.9, 0.95.

Runs the pocketgan pipeline (data → teacher → distill → profile → export → bench → eval) from the
built-in ``stylegan2`` recipe: one StyleGAN2 teacher trained on the embedded ``digits`` (32 px), and
every method × uniform pruning ratio P at the same step budget, each student starting from the
teacher pruned uniformly (every layer keeps ``ceil((1 − P) × width)`` channels, L1 importance).

For every student: compression rate (fvcore MAC reduction of mapping + synthesis against the
teacher), MACs, params, FID/KID with the digits' own feature network (named in the table),
its discriminator's logit gap D(real) − D(fake) over the last quarter of training (the papers'
stability signal; and the teacher discriminator's, for the NICKEL methods), and the ORT latency of
the exported student. The papers' claim to check: NICKEL & DiME beat ITGC and KD by the most at
the highest rates, with a smaller, steadier logit gap.

    python benchmarks/stylegan2.py [--methods kd,itgc,dime,nickel,nickel-dime] [--rates 0.7,0.8,0.9,0.95]
                                   [--teacher-steps 800] [--student-steps 300] [--batch 16] [--out DIR]

Prints the table and writes ``<out>/stylegan2.json`` (the full pipeline report sits beside it).
Stages are cached, so re-running with more methods only trains the new students.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pocketgan.config import STYLEGAN2_RATES, load_config
from pocketgan.console import console, format_count
from pocketgan.core.fsio import write_json_atomic
from pocketgan.pipeline import run_pipeline
from pocketgan.report import logit_gap

METHODS = ("kd", "itgc", "dime", "nickel", "nickel-dime")


def student_name(method: str, rate: float) -> str:
    return f"{method}-p{round(rate * 100)}"


def build_overrides(args: argparse.Namespace) -> list[str]:
    """Recipe overrides over ``stylegan2``: one teacher, every method × rate at the same budget."""
    students = [
        {"name": student_name(method, rate), "method": method, "student": None, "steps": args.student_steps,
         "batch": args.batch, "lr": args.lr, "options": {"ratio": rate}}
        for rate in args.rates
        for method in args.methods
    ]  # fmt: skip
    return [
        f"teacher.steps={args.teacher_steps}",
        f"teacher.batch={args.batch}",
        f"students={json.dumps(students)}",
        f"bench.threads={args.threads}",
    ]


def table(results: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per student: method, P, compression, MACs, params, FID/KID, logit gaps, ORT latency."""
    rows = {row["model"]: row for row in results["models"]}
    training = results.get("training", {})
    out = []
    for rate in args.rates:
        for method in args.methods:
            name = student_name(method, rate)
            row, logs = rows.get(name), (training.get(name) or {}).get("logits") or []
            if row is None:
                continue
            out.append({"model": name, "method": method, "P": rate, "compression": row["compression"],
                        "macs": row["macs"], "params": row["params"], "fid": row.get("fid"), "kid": row.get("kid"),
                        "feature_network": row.get("feature_network"), "logit_gap": logit_gap(logs),
                        "teacher_logit_gap": logit_gap(logs, "Dt_real", "Dt_fake"),
                        "ort_p50_ms": row.get("latency_p50_ms")})  # fmt: skip
    return out


def summarise(rows: list[dict[str, Any]], teacher: dict[str, Any]) -> dict[str, Any]:
    """Per rate: the methods ranked by FID, and whether NICKEL & DiME is first (the papers' claim)."""
    summary: dict[str, Any] = {"teacher_fid": teacher.get("fid"), "by_rate": {}}
    for rate in sorted({row["P"] for row in rows}):
        ranked = sorted((r for r in rows if r["P"] == rate and r["fid"] is not None), key=lambda r: r["fid"])
        summary["by_rate"][str(rate)] = {
            "ranking": [r["method"] for r in ranked],
            "nickel_dime_first": bool(ranked) and ranked[0]["method"] == "nickel-dime",
        }
    return summary


def print_table(rows: list[dict[str, Any]], teacher: dict[str, Any]) -> None:
    """The benchmark table (Markdown, so it pastes into the README)."""
    network = teacher.get("feature_network", "?")
    head = (f"| method | P | MAC reduction | MACs | params | FID ({network}) | KID | D logit gap | teacher-D gap "
            "| ORT p50 ms |")
    lines = [head, "|" + "---|" * 10]
    cell = lambda v, f: "–" if v is None else f.format(v)  # noqa: E731
    lines.append(f"| teacher | 0 | 0 | {format_count(teacher['macs'])} | {format_count(teacher['params'])} | "
                 f"{cell(teacher.get('fid'), '{:.2f}')} | {cell(teacher.get('kid'), '{:.4f}')} | – | – | "
                 f"{cell(teacher.get('latency_p50_ms'), '{:.3f}')} |")  # fmt: skip
    for r in rows:
        lines.append(f"| {r['method']} | {r['P']:g} | {r['compression'] * 100:.2f}% | {format_count(r['macs'])} | "
                     f"{format_count(r['params'])} | {cell(r['fid'], '{:.2f}')} | {cell(r['kid'], '{:.4f}')} | "
                     f"{cell(r['logit_gap'], '{:.2f}')} | {cell(r['teacher_logit_gap'], '{:.2f}')} | "
                     f"{cell(r['ort_p50_ms'], '{:.3f}')} |")  # fmt: skip
    console.print("\n".join(lines), markup=False, soft_wrap=True)


def parse_list(kind: type) -> Any:
    return lambda text: [kind(item) for item in text.split(",") if item]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", type=parse_list(str), default=list(METHODS))
    parser.add_argument("--rates", type=parse_list(float), default=list(STYLEGAN2_RATES))
    parser.add_argument("--teacher-steps", type=int, default=800)
    parser.add_argument("--student-steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/stylegan2"))
    args = parser.parse_args()
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")

    overrides = build_overrides(args)
    run_pipeline(load_config("stylegan2", overrides), args.out, recipe_path="stylegan2", overrides=overrides)
    results = json.loads((args.out / "results.json").read_text())
    teacher = results["models"][0]
    rows = table(results, args)
    summary = summarise(rows, teacher)
    write_json_atomic(args.out / "stylegan2.json", {"arguments": vars(args) | {"out": str(args.out)},
                                                    "feature_network": results["feature_network"],
                                                    "teacher": teacher, "rows": rows, "summary": summary})  # fmt: skip
    print_table(rows, teacher)
    console.print(summary)


if __name__ == "__main__":
    main()
