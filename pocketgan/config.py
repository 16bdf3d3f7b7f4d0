"""The run configuration of ``pocketgan run``: one typed tree of dataclasses, validated once.

A recipe (YAML) is read over the built-in defaults, ``a.b=value`` overrides are applied
(``teacher.steps=200``, ``students.0.method=kd``), and the result is parsed into a
:class:`RunConfig`:

- an unknown key at any depth is an error naming the key and the closest valid one
  (``teacher.stpes`` → "did you mean steps?");
- every value is coerced to its field's type here, once (``2e-4`` — a string to YAML — becomes
  a float); a value that cannot be is a one-line error naming the field;
- every default is a field default below: the built-in recipe *is* ``RunConfig()``.

:func:`dump_config` writes a configuration back as commented YAML that :func:`load_config`
reads into an equal configuration (``pocketgan run --print-recipe``, ``RUN/recipe.yaml``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from pocketgan.core.errors import PocketganError
from pocketgan.core.registry import did_you_mean

#: The one export format ``pocketgan run`` accepts, and why (its bench and eval stages run ONNX).
RUN_FORMATS = ("onnx",)

_MISSING = dataclasses.MISSING


def setting(default: Any = _MISSING, *, help: str, key: str | None = None, factory: Any = _MISSING,
            choices: tuple[Any, ...] = (), minimum: float | None = None, above: float | None = None,
            below: float | None = None) -> Any:  # fmt: skip
    """A config field: its default, the ``help`` shown as a comment by :func:`dump_config`, its YAML ``key``
    (when not the field name), and the checks on its value (``choices``, ``minimum``, ``above``, ``below``)."""
    metadata = {"help": help, "key": key, "choices": choices, "minimum": minimum, "above": above, "below": below}
    if factory is not _MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# ---------------------------------------------------------------------------------------------- the tree


@dataclass(kw_only=True)
class DataConfig:
    """Where the images come from (paired, or unpaired for a cyclegan teacher)."""

    builder: str = setting("edges2photos", help="embedded dataset builder (pocketgan data --help lists them)")
    path: str | None = setting(None, help="a pix2pix aligned or CycleGAN unaligned dataset folder instead")
    count: int = setting(600, help="training pairs the builder makes", minimum=1)
    val_count: int = setting(48, help="validation pairs the builder makes", minimum=1)
    options: dict[str, Any] = setting(factory=dict, help="builder options, e.g. {photos: DIR} (see pocketgan data)")
    direction: str = setting("AtoB", help="translate A to B, or B to A", choices=("AtoB", "BtoA"))


def _steps(default: int) -> Any:
    return setting(default, help="optimisation steps", minimum=1)


def _batch() -> Any:
    return setting(4, help="batch size", minimum=1)


def _lr() -> Any:
    return setting(2e-4, help="Adam learning rate (linear decay over the second half)", above=0)


def _options(what: str) -> Any:
    return setting(factory=dict, help=f"{what} options (--option key=value)")


TEACHER_METHODS = ("pix2pix", "cyclegan")


@dataclass(kw_only=True)
class TeacherConfig:
    """The teacher (pix2pix on paired data, cyclegan on unpaired): trained here, or imported with ``from``."""

    method: str = setting("pix2pix", help="pix2pix (paired data) or cyclegan (unpaired: trainA/ + trainB/)",
                          choices=TEACHER_METHODS)  # fmt: skip
    arch: str = setting("resnet9:ngf=32", help="teacher architecture")
    source: str | None = setting(
        None, key="from", help="a model directory or an official latest_net_G.pth to import instead of training"
    )
    steps: int = _steps(800)
    batch: int = _batch()
    lr: float = _lr()
    options: dict[str, Any] = _options("teacher method (pix2pix or cyclegan)")


@dataclass(kw_only=True)
class StudentConfig:
    """One student distilled from the teacher."""

    name: str = setting(help="the student's name in the report (and its directory)")
    method: str = setting(help="distillation method: omgd, gan-compression or kd")
    student: str = setting(help="student architecture, or a model directory (e.g. a pruned teacher)")
    steps: int = _steps(500)
    batch: int = _batch()
    lr: float = _lr()
    options: dict[str, Any] = _options("method")


def default_students() -> list[StudentConfig]:
    """OMGD and the plain-KD floor, both into a 36× cheaper Mobile-ResNet."""
    return [
        StudentConfig(name="omgd-ngf8", method="omgd", student="mobile-resnet:ngf=8",
                      options={"deep_ngf": 8, "deep_blocks": 9}),  # fmt: skip
        StudentConfig(name="kd-ngf8", method="kd", student="mobile-resnet:ngf=8"),
    ]


@dataclass(kw_only=True)
class PruneConfig:
    """Prune one student further (exactly one of ``ratio``, ``target_rate``, ``target_macs``)."""

    student: str = setting(help="the student to prune (one of students.*.name)")
    ratio: float | None = setting(None, help="channel pruning ratio", above=0, below=1)
    target_rate: float | None = setting(None, help="at least this share fewer MACs (the ratio is searched)",
                                        above=0, below=1)  # fmt: skip
    target_macs: int | None = setting(None, help="at most this many MACs (800M, 1.2G or a number)", above=0)
    importance: str = setting("l1", help="channel ranking: l1, l2, taylor or random")

    def target(self) -> dict[str, float | int]:
        """The one pruning target that is set, as ``prune_model`` keyword arguments."""
        return {k: v for k, v in (("ratio", self.ratio), ("target_rate", self.target_rate),
                                  ("target_macs", self.target_macs)) if v is not None}  # fmt: skip


@dataclass(kw_only=True)
class FeaturesConfig:
    """The feature network of OMGD's perceptual losses and of FID/KID."""

    network: str | None = setting(
        None, help="null: the dataset's own network (trained, cached); or inception with a local .pth path"
    )
    steps: int = setting(400, help="training steps of the dataset's own network", minimum=1)


@dataclass(kw_only=True)
class ExportConfig:
    """How every model is exported (and checked against PyTorch)."""

    format: str = setting("onnx", help="artifact format (pocketgan run benchmarks ONNX)")
    opset: int = setting(17, help="ONNX opset", minimum=1)


@dataclass(kw_only=True)
class BenchConfig:
    """ONNX Runtime latency, all models interleaved."""

    threads: int | None = setting(2, help="intra-op threads (null: onnxruntime's choice)", minimum=1)
    batch: int = setting(1, help="images per run", minimum=1)
    warmup_ms: float = setting(300.0, help="untimed warm-up per model, milliseconds", minimum=0)
    iterations: int = setting(30, help="timed iterations per model, at least", minimum=1)
    duration: float = setting(2.0, help="timed seconds per model, at least", minimum=0)


@dataclass(kw_only=True)
class EvalConfig:
    """Quality: PSNR/SSIM against the ground truth and the teacher, FID/KID with the feature network."""

    split: str = setting("val", help="dataset split to evaluate on")
    batch: int = setting(16, help="images per forward pass", minimum=1)


@dataclass(kw_only=True)
class RunConfig:
    """The whole run; ``RunConfig()`` is the built-in recipe."""

    name: str = setting("edges2photos-default", help="the run's title in the report")
    seed: int = setting(0, help="seeds the dataset builder and every training stage", minimum=0)
    size: int = setting(64, help="image side in pixels, for every stage", minimum=16)
    data: DataConfig = setting(factory=DataConfig, help="the paired images")
    teacher: TeacherConfig = setting(factory=TeacherConfig, help="the teacher (pix2pix or cyclegan)")
    features: FeaturesConfig = setting(factory=FeaturesConfig, help="the feature network")
    students: list[StudentConfig] = setting(factory=default_students, help="students distilled from the teacher")
    prune: PruneConfig | None = setting(
        None, help="null, or {student: NAME, ratio | target_rate | target_macs: X, importance: l1}"
    )
    export: ExportConfig = setting(factory=ExportConfig, help="export of every model")
    bench: BenchConfig = setting(factory=BenchConfig, help="latency measurement")
    eval: EvalConfig = setting(factory=EvalConfig, help="quality measurement")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain YAML/JSON data, keyed as in a recipe file."""
        return _to_data(self)

    def student(self, name: str) -> StudentConfig:
        """The student called ``name``."""
        return next(s for s in self.students if s.name == name)


BUILT_IN_NOTE = """\
The built-in recipe: edges→photos at 64 px, a pix2pix ResNet-9 teacher (ngf 32), a 36x cheaper
Mobile-ResNet student (ngf 8) distilled with OMGD beside the plain-KD floor, exported to ONNX and
benchmarked. Sized to finish within 10 minutes on a 2-core CPU from a cold start; the paper setting
is resnet9:ngf=64 → mobile-resnet:ngf=16 at 256 px for ~200 epochs (see README)."""


def cyclegan_recipe() -> dict[str, Any]:
    """``pocketgan run cyclegan``: unpaired photos ↔ stylized photos, a CycleGAN teacher, OMGD and GAN Compression.

    FID/KID use the dataset's own feature network (trained on its B images); PSNR/SSIM against the
    ground truth are not computed (no pairs exist), those against the teacher are.
    """
    students = [  # the best of a first probe each (300 steps): see README, "pocketgan run"
        {"name": "omgd-ngf8", "method": "omgd", "student": "mobile-resnet:ngf=8", "steps": 300, "batch": 4,
         "lr": 1e-3, "options": {"ndf": 32}},
        {"name": "gan-compression-unet4", "method": "gan-compression", "student": "unet64:ngf=4,upsample=resize",
         "steps": 300, "batch": 4, "options": {"ndf": 32}},
    ]  # fmt: skip
    # A U-Net with resize-conv upsampling: in this budget a ResNet-9 CycleGAN (no skip at full resolution)
    # is still far from the near-identity stylization (measured: 11.6 dB to the filter vs 18.0 for the U-Net).
    teacher = {"method": "cyclegan", "arch": "unet64:ngf=16,upsample=resize", "steps": 600, "batch": 4, "lr": 2e-4,
               "options": {"ndf": 32}}  # fmt: skip
    return {
        "name": "photos2stylized-cyclegan",
        "data": {"builder": "photos2stylized-unpaired", "count": 400, "val_count": 48},
        "teacher": teacher,
        "students": students,
    }


def stylized_recipe() -> dict[str, Any]:
    """``pocketgan run stylized``: photo → stylized photo, a task a person judges by eye.

    The teacher is a U-Net with skips at full resolution (``unet64``: 6 downsamplings at 64 px)
    and resize-conv upsampling (no checkerboard), at lr 1e-3: measured on 64-px crops it beats
    copying the input (18.2 dB) by 4.2 dB after 600 steps where ``resnet9:ngf=32`` at 2e-4 does not.
    The students are the same family at ngf 5: 31.8× fewer MACs than the teacher.
    """
    student = "unet64:ngf=5,upsample=resize"
    students = [
        {"name": "omgd-ngf5", "method": "omgd", "student": student, "lr": 1e-3,
         "options": {"deep_ngf": 8, "deep_blocks": 9}},
        {"name": "kd-ngf5", "method": "kd", "student": student, "lr": 1e-3},
    ]  # fmt: skip
    return {
        "name": "photos2stylized",
        "data": {"builder": "photos2stylized", "count": 600, "val_count": 48},
        "teacher": {"arch": "unet64:ngf=32,upsample=resize", "steps": 1200, "batch": 4, "lr": 1e-3},
        "students": students,
    }


NAMED_RECIPES: dict[str, Callable[[], dict[str, Any]]] = {
    "default": dict, "cyclegan": cyclegan_recipe, "stylized": stylized_recipe,
}  # fmt: skip
"""Built-in recipes ``pocketgan run NAME`` selects: recipe data read over ``RunConfig()`` (``default``: itself)."""


# ---------------------------------------------------------------------------------------------- loading


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read the recipe ``path`` (a file, or a built-in name: :data:`NAMED_RECIPES`) over the built-in one,
    apply ``a.b=value`` overrides, validate."""
    data = RunConfig().to_dict()
    if path is not None:
        data = merge(data, read_recipe(path))
    for item in overrides or []:
        apply_override(data, item)
    return parse_config(data)


def read_recipe(ref: str | Path) -> dict[str, Any]:
    """The recipe data of a YAML file ``ref``, or of the built-in recipe called ``ref`` when no such file exists."""
    path = Path(ref)
    if not path.is_file() and str(ref) in NAMED_RECIPES:
        return NAMED_RECIPES[str(ref)]()
    if not path.is_file() and path.suffix not in (".yaml", ".yml"):
        raise PocketganError(f"{ref}: no such recipe file or built-in recipe{did_you_mean(str(ref), NAMED_RECIPES)} "
                             f"(built-in: {', '.join(NAMED_RECIPES)})")  # fmt: skip
    return read_recipe_file(path)


def read_recipe_file(path: Path) -> dict[str, Any]:
    """The mapping in a YAML recipe file, or a one-line error."""
    if not path.is_file():
        raise PocketganError(f"{path}: no such recipe file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PocketganError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise PocketganError(f"{path}: a recipe is a mapping of sections ({', '.join(_keys(RunConfig))})")
    return data


def parse_config(data: dict[str, Any]) -> RunConfig:
    """A validated :class:`RunConfig` from recipe data (every key known, every value coerced and checked)."""
    config = _parse_dataclass(RunConfig, data, "")
    check_config(config)
    return config


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; lists and scalars in ``update`` replace those in ``base``."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_override(data: dict[str, Any], item: str) -> None:
    """``teacher.steps=200`` or ``students.0.method=kd``: set one value (parsed as YAML) in recipe ``data``."""
    key, eq, raw = item.partition("=")
    if not eq or not key.strip():
        raise PocketganError(f"bad override {item!r}: expected section.key=value")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    *parents, last = key.strip().split(".")
    node: Any = data
    for depth, part in enumerate(parents):
        child = _child(node, part, item)
        if child is None:
            child = node[_index(node, part, item)] = {}
        if not isinstance(child, (dict, list)):
            raise PocketganError(f"bad override {item!r}: {'.'.join(parents[: depth + 1])} is not a section")
        node = child
    node[_index(node, last, item)] = value


def _index(node: dict[str, Any] | list[Any], part: str, item: str) -> Any:
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise PocketganError(f"bad override {item!r}: no list item {part} (the list has {len(node)})")
        return int(part)
    return part


def _child(node: dict[str, Any] | list[Any], part: str, item: str) -> Any:
    return node[_index(node, part, item)] if isinstance(node, list) else node.get(part)


def check_config(config: RunConfig) -> None:
    """The rules between fields: distinct student names, a prune section that names one, the export format."""
    if not config.students:
        raise PocketganError("recipe needs at least one entry under students")
    names: set[str] = set()
    for i, student in enumerate(config.students):
        if student.name in names or student.name == "teacher":
            raise PocketganError(f"students.{i}.name {student.name!r} is taken (names are distinct, and not teacher)")
        names.add(student.name)
    if config.prune is not None:
        if config.prune.student not in names:
            raise PocketganError(
                f"prune.student must name one of the students ({', '.join(sorted(names))}); "
                f"got {config.prune.student!r}"
            )
        if len(config.prune.target()) != 1:
            raise PocketganError("prune needs exactly one of ratio, target_rate, target_macs")
    if config.export.format not in RUN_FORMATS:
        raise PocketganError(
            f"export.format {config.export.format!r}{did_you_mean(config.export.format, RUN_FORMATS)}: pocketgan run "
            "exports onnx only (its bench and eval stages run the artifacts with onnxruntime); export other formats "
            "from RUN/models with `pocketgan export MODEL --format FORMAT`"
        )


# ---------------------------------------------------------------------------------------------- parsing


def _fields(cls: type) -> Iterator[tuple[str, dataclasses.Field[Any], Any]]:
    """``(recipe key, field, resolved type)`` of a config dataclass, in order."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        yield f.metadata.get("key") or f.name, f, hints[f.name]


def _keys(cls: type) -> list[str]:
    return [key for key, _, _ in _fields(cls)]


def _where(path: str) -> str:
    return path or "the recipe"


def _parse_dataclass(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise PocketganError(f"recipe: {_where(path)} must be a mapping of {', '.join(_keys(cls))}; got {data!r}")
    known = _keys(cls)
    for key in data:
        if key not in known:
            name = f"{path}.{key}" if path else str(key)
            raise PocketganError(
                f"unknown recipe key {name}{did_you_mean(str(key), known)}; {_where(path)} takes {', '.join(known)}"
            )
    values: dict[str, Any] = {}
    for key, f, kind in _fields(cls):
        sub = f"{path}.{key}" if path else key
        if key in data:
            values[f.name] = _check(_coerce(data[key], kind, sub), f, sub)
        elif f.default is _MISSING and f.default_factory is _MISSING:
            raise PocketganError(f"recipe: {_where(path)} needs {key}")
    return cls(**values)


def _coerce(value: Any, kind: Any, path: str) -> Any:
    """``value`` as type ``kind`` (a scalar, ``X | None``, ``list[Config]``, ``dict[str, Any]`` or a config)."""
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, options[0], path)
    if dataclasses.is_dataclass(kind):
        return _parse_dataclass(kind, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise PocketganError(f"recipe: {path} must be a list; got {value!r}")
        (item,) = typing.get_args(kind)
        return [_coerce(v, item, f"{path}.{i}") for i, v in enumerate(value)]
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise PocketganError(f"recipe: {path} must be a mapping of key: value; got {value!r}")
        return {str(k): copy.deepcopy(v) for k, v in value.items()}
    return _scalar(value, kind, path)


_SCALAR_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _scalar(value: Any, kind: type, path: str) -> Any:
    ok, result = False, None
    if kind is bool:
        text = str(value).lower()
        ok, result = isinstance(value, bool) or text in ("true", "false"), text == "true"
    elif isinstance(value, bool) or isinstance(value, (dict, list)) or value is None:
        ok = False
    elif kind is str:
        ok, result = True, str(value)
    elif kind is float:
        ok, result = _try(float, value)
        ok = ok and math.isfinite(result)
    elif kind is int:
        ok, result = _try(_integer, value)
    if not ok:
        raise PocketganError(f"recipe: {path} must be {_SCALAR_NAMES.get(kind, kind.__name__)}; got {value!r}")
    return result


def _integer(value: Any) -> int:
    """An int from an int, an integral float or number text; a MAC count like ``800M`` too."""
    if isinstance(value, str):
        text = value.strip()
        scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:].upper(), 1)
        value = float(text[:-1] if scale != 1 else text) * scale
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    return int(value)


def _try(cast: Any, value: Any) -> tuple[bool, Any]:
    try:
        return True, cast(value)
    except (TypeError, ValueError, OverflowError):
        return False, None


def _check(value: Any, f: dataclasses.Field[Any], path: str) -> Any:
    """The field's own rules: ``choices`` and numeric bounds."""
    meta = f.metadata
    if value is None:
        return value
    if meta.get("choices") and value not in meta["choices"]:
        raise PocketganError(
            f"recipe: {path} must be one of {', '.join(map(str, meta['choices']))}; got {value!r}"
            f"{did_you_mean(str(value), map(str, meta['choices']))}"
        )
    kind = "an integer" if isinstance(value, int) else "a number"
    for rule, test, words in (("minimum", lambda v, b: v >= b, ">="), ("above", lambda v, b: v > b, ">"),
                              ("below", lambda v, b: v < b, "<")):  # fmt: skip
        bound = meta.get(rule)
        if bound is not None and isinstance(value, (int, float)) and not test(value, bound):
            raise PocketganError(f"recipe: {path} must be {kind} {words} {bound:g}; got {value!r}")
    return value


def _to_data(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {key: _to_data(getattr(value, f.name)) for key, f, _ in _fields(type(value))}
    if isinstance(value, list):
        return [_to_data(v) for v in value]
    if isinstance(value, dict):
        return {k: copy.deepcopy(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------- writing

COMMENT_COLUMN = 40


def dump_config(config: RunConfig) -> str:
    """The configuration as YAML with a comment on every key; :func:`load_config` reads it back unchanged."""
    lines = ["# pocketgan run recipe: every key with its value. Run it: pocketgan run THIS.yaml [key=value ...]"]
    if config == RunConfig():
        lines += ["#"] + [f"# {line}" for line in BUILT_IN_NOTE.splitlines()]
    _dump_fields(config, "", lines)
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    """One value as inline YAML (``null``, ``0.0002``, ``{deep_ngf: 8}``, ``resnet9:ngf=32``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _line(lines: list[str], text: str, comment: str | None) -> None:
    if comment:
        text = f"{text:<{COMMENT_COLUMN}}# {comment}" if len(text) < COMMENT_COLUMN else f"{text}  # {comment}"
    lines.append(text)


def _dump_fields(obj: Any, indent: str, lines: list[str], *, comments: bool = True, first: str = "") -> None:
    for number, (key, f, _) in enumerate(_fields(type(obj))):
        value = getattr(obj, f.name)
        lead = first if number == 0 and first else indent
        comment = f.metadata["help"] if comments else None
        if dataclasses.is_dataclass(value):
            _line(lines, f"{lead}{key}:", comment)
            _dump_fields(value, indent + "  ", lines, comments=comments)
        elif isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
            _line(lines, f"{lead}{key}:", comment)
            for i, item in enumerate(value):
                _dump_fields(item, indent + "    ", lines, comments=comments and i == 0, first=indent + "  - ")
        else:
            _line(lines, f"{lead}{key}: {_flow(_to_data(value))}", comment)
