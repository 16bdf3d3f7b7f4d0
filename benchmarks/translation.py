"""Translation benchmark: OMGD vs GAN Compression vs KD, and OMGD students of several widths.

Runs the pocketgan pipeline (data → teacher → distill → profile → export → bench → eval) on
edges2photos with one teacher (``resnet9:ngf=64``) and, at the same step budget:

- ``omgd``, ``gan-compression`` and ``kd`` into ``mobile-resnet:ngf=16`` (≈40× fewer MACs);
- ``omgd`` into ``mobile-resnet`` at ngf 8, 12, 24 and 32.

The unpaired row (``--recipe cyclegan``) runs the same comparison on the built-in CycleGAN recipe:
photos ↔ stylized photos with no pairs (``photos2stylized-unpaired``), a CycleGAN teacher, OMGD in
its CycleGAN setting (one online teacher, λ_CD 5e2), GAN Compression's CycleGAN setting and KD;
there FID/KID are the metric (PSNR/SSIM against a ground truth do not exist), PSNR to the teacher
is still reported.

Each student is reported against the teacher (MACs, params, ORT latency, PSNR/SSIM, FID/KID with
the dataset's domain feature network). The target: the OMGD ngf-16 student's FID within 10% of
the teacher's, and better than KD's. Stages are cached, so re-running with more steps only
retrains what changed.

    python benchmarks/translation.py [--recipe cyclegan] [--data DIR] [--size 64] [--teacher-steps 1500]
                                     [--student-steps 600] [--widths 8,12,16,24,32] [--out DIR]

Prints the table and writes ``<out>/translation.json`` (the full pipeline report sits beside it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pocketgan.console import console
from pocketgan.core.fsio import write_json_atomic
from pocketgan.config import load_config
from pocketgan.pipeline import run_pipeline


def build_overrides(args: argparse.Namespace) -> list[str]:
    """Recipe overrides: one teacher, the method comparison at ngf 16, then the OMGD width sweep."""
    omgd_options = {"deep_ngf": args.deep_ngf, "deep_blocks": args.deep_blocks}
    students: list[dict[str, Any]] = [
        {"name": f"{method}-ngf16", "method": method, "student": "mobile-resnet:ngf=16"}
        for method in ("omgd", "gan-compression", "kd")
    ]
    students += [
        {"name": f"omgd-ngf{w}", "method": "omgd", "student": f"mobile-resnet:ngf={w}"}
        for w in args.widths
        if w != 16
    ]
    for student in students:
        student.update(steps=args.student_steps, batch=args.batch)
        if student["method"] == "omgd":
            student["options"] = omgd_options
    data = [f"data.path={args.data}"] if args.data else []
    return data + [
        f"size={args.size}",
        f"data.count={args.count}",
        f"teacher.arch={args.teacher}",
        f"teacher.steps={args.teacher_steps}",
        f"teacher.batch={args.batch}",
        f"students={json.dumps(students)}",
        f"bench.threads={args.threads}",
    ]


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """The target check: OMGD ngf 16 within 10% of the teacher's FID and below KD's."""
    rows = {row["model"]: row for row in results["models"]}
    teacher, omgd, kd = rows["teacher"], rows.get("omgd-ngf16"), rows.get("kd-ngf16")
    summary: dict[str, Any] = {"feature_network": results["feature_network"]}
    if omgd and kd:
        ratio = omgd["fid"] / teacher["fid"]
        summary.update(
            omgd16_fid=omgd["fid"],
            teacher_fid=teacher["fid"],
            kd16_fid=kd["fid"],
            gan_compression16_fid=rows.get("gan-compression-ngf16", {}).get("fid"),
            omgd16_fid_over_teacher=ratio,
            omgd16_mac_reduction=teacher["macs"] / omgd["macs"],
            within_10_percent_of_teacher=ratio <= 1.10,
            beats_kd=omgd["fid"] < kd["fid"],
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="edges2photos",
                        help="the built-in recipe to start from (edges2photos; cyclegan: the unpaired row)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--data", type=Path, default=None, help="an existing dataset folder (e.g. edges2shoes)")
    parser.add_argument("--count", type=int, default=600, help="training pairs to build")
    parser.add_argument("--teacher", default="resnet9:ngf=64")
    parser.add_argument("--teacher-steps", type=int, default=1500)
    parser.add_argument("--student-steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--widths", type=lambda s: [int(w) for w in s.split(",")], default=[8, 12, 16, 24, 32])
    parser.add_argument("--deep-ngf", type=int, default=16, help="OMGD's deep teacher width")
    parser.add_argument("--deep-blocks", type=int, default=18, help="OMGD's deep teacher residual blocks")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/translation[-RECIPE]")
    args = parser.parse_args()
    args.out = args.out or Path("benchmarks/results/" + "-".join(["translation", *([args.recipe] if args.recipe != "edges2photos" else [])]))

    overrides = build_overrides(args)
    run_pipeline(load_config(args.recipe, overrides), args.out, recipe_path=args.recipe, overrides=overrides)
    results = json.loads((args.out / "results.json").read_text())
    summary = summarise(results)
    write_json_atomic(args.out / "translation.json", {"arguments": vars(args) | {"out": str(args.out)},
                                                      "summary": summary, "models": results["models"]})  # fmt: skip
    console.print(summary)


if __name__ == "__main__":
    main()
