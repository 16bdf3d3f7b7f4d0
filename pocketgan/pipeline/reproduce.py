"""The report's "Reproduce" section, generated from the run's configuration.

:data:`FLAGS` is the one mapping from recipe fields (dotted recipe keys, ``*`` for a list index)
to the flags of the verbs; :data:`STRUCTURAL` says where every other field goes. Every field of
:class:`~pocketgan.config.RunConfig` is in one of the two (a test checks it), so a changed recipe
is reproduced by the stage-by-stage commands too.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pocketgan.config import RunConfig
from pocketgan.export.formats import format_spec

#: recipe field → flag, per verb (in the order the flags are written).
FLAGS: dict[str, dict[str, str]] = {
    "data": {"size": "--size", "seed": "--seed", "data.count": "--count", "data.val_count": "--val-count",
             "data.options": "--option"},
    "teacher": {"teacher.method": "--method", "teacher.arch": "--arch", "size": "--size", "seed": "--seed", "data.direction": "--direction",
                "teacher.steps": "--steps", "teacher.batch": "--batch", "teacher.lr": "--lr",
                "teacher.options": "--option"},
    "distill": {"students.*.method": "--method", "students.*.student": "--student", "size": "--size",
                "seed": "--seed", "data.direction": "--direction", "students.*.steps": "--steps",
                "students.*.batch": "--batch", "students.*.lr": "--lr", "students.*.options": "--option"},
    "prune": {"prune.ratio": "--ratio", "prune.target_rate": "--target-rate", "prune.target_macs": "--target-macs",
              "prune.importance": "--importance", "size": "--size"},
    "export": {"export.format": "--format", "export.opset": "--opset", "size": "--size"},
    "bench": {"bench.threads": "--threads", "bench.batch": "--batch", "bench.warmup_ms": "--warmup-ms",
              "bench.iterations": "--iterations", "bench.duration": "--duration"},
    "eval": {"eval.split": "--split", "eval.batch": "--batch", "size": "--size", "data.direction": "--direction"},
}  # fmt: skip

#: recipe fields that are not the value of a flag in :data:`FLAGS`, and what they become.
STRUCTURAL: dict[str, str] = {
    "name": "the report's title",
    "data.builder": "the `pocketgan data` sub-command",
    "data.path": "--data of teacher, distill and eval (instead of `pocketgan data`)",
    "teacher.from": "`pocketgan teacher --arch FROM --init-arch ARCH --steps 0`",
    "students.*.name": "-o of `pocketgan distill` (and the model the later verbs read)",
    "prune.student": "the model `pocketgan prune` reads",
    "features.network": "--perceptual of distill (methods with perceptual losses) and --feature of eval",
    "features.steps": "non-default: the network the run trained is passed as --perceptual/--feature",
}


def field_value(data: dict[str, Any], path: str, index: int | None = None) -> Any:
    """The value of the dotted recipe key ``path`` in recipe ``data`` (``*`` is list item ``index``)."""
    node: Any = data
    for part in path.split("."):
        if node is None:
            return None
        node = node[index] if part == "*" else node.get(part)
    return node


def flag_args(flag: str, value: Any) -> list[str]:
    """``--steps 800``; ``--option k=v`` per item of a mapping; nothing for ``None``."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [arg for k, v in value.items() for arg in ("--option", f"{k}={_text(v)}")]
    return [flag, _text(value)]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)


def verb_flags(verb: str, data: dict[str, Any], index: int | None = None) -> list[str]:
    """Every flag of ``verb`` that a recipe field sets, from :data:`FLAGS`."""
    return [arg for path, flag in FLAGS[verb].items() for arg in flag_args(flag, field_value(data, path, index))]


def reproduce_commands(config: RunConfig, out: Path, *, models: Collection[str], feature: str | None = None,
                       perceptual_methods: Collection[str] = ("omgd",)) -> list[str]:  # fmt: skip
    """The one command that reproduces the run, then the equivalent stage-by-stage commands.

    ``models`` are the run's model names (teacher, students, pruned); ``feature`` is the
    ``--perceptual``/``--feature`` value when the verbs' default network is not the run's.
    """
    out = Path(out)
    lines = ["# the whole run (the recipe is saved beside this report):",
             shlex.join(["pocketgan", "run", str(out / "recipe.yaml"), "-o", str(out)]),
             "", "# or stage by stage:"]  # fmt: skip
    data, data_dir = config.to_dict(), config.data.path or "data"
    if not config.data.path:
        lines.append(_join(["pocketgan", "data", config.data.builder, "-o", "data"], verb_flags("data", data)))
    lines.append(teacher_command(config, data, data_dir))
    for index, student in enumerate(config.students):
        perceptual = ["--perceptual", feature] if feature and student.method in perceptual_methods else []
        head = ["pocketgan", "distill", "--teacher", "teacher", "--data", data_dir, "-o", student.name]
        lines.append(_join(head, verb_flags("distill", data, index) + perceptual))
    if config.prune is not None:
        head = ["pocketgan", "prune", config.prune.student, "-o", f"{config.prune.student}-pruned"]
        lines.append(_join(head, verb_flags("prune", data)))
    for name in models:
        lines.append(_join(["pocketgan", "export", name, "-o", f"onnx/{name}"], verb_flags("export", data)))
    artifact = format_spec(config.export.format).artifact  # the pipeline exports to RUN/onnx/NAME/ARTIFACT
    artifacts = [f"onnx/{name}/{artifact}" for name in models]
    lines.append(_join(["pocketgan", "bench", *artifacts], verb_flags("bench", data)))
    for name in models:
        teacher = [] if name == "teacher" else ["--teacher", "teacher"]
        extra = teacher + (["--feature", feature] if feature else [])
        lines.append(_join(["pocketgan", "eval", name, "--data", data_dir], extra + verb_flags("eval", data)))
    return lines


def teacher_command(config: RunConfig, data: dict[str, Any], data_dir: str) -> str:
    """``pocketgan teacher``: training from the recipe, or importing ``teacher.from``."""
    teacher = config.teacher
    if teacher.source:
        return _join(["pocketgan", "teacher", "--arch", teacher.source, "--init-arch", teacher.arch, "--steps", "0",
                      "-o", "teacher"], [])  # fmt: skip
    return _join(["pocketgan", "teacher", "--data", data_dir, "-o", "teacher"], verb_flags("teacher", data))


def _join(head: list[str], flags: list[str]) -> str:
    return shlex.join(head + flags)
