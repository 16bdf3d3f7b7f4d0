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
from pocketgan.export.formats import FORMATS, runnable_formats

#: The export formats ``pocketgan run`` accepts: those a runtime backend loads (its bench stage runs
#: them with the backend the formats table names: ``pocketgan.export.formats``).
RUN_FORMATS = tuple(runnable_formats())

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

    builder: str = setting("photos2stylized", help="embedded dataset builder (pocketgan data --help lists them)")
    path: str | None = setting(None, help="a dataset folder instead: pix2pix aligned, CycleGAN unaligned, or images")
    count: int = setting(600, help="training pairs the builder makes", minimum=1)
    val_count: int = setting(48, help="validation pairs the builder makes", minimum=1)
    options: dict[str, Any] = setting(factory=dict, help="builder options, e.g. {photos: DIR} (see pocketgan data)")
    direction: str = setting("AtoB", help="translate A to B, or B to A", choices=("AtoB", "BtoA"))


def _steps(default: int) -> Any:
    return setting(default, help="optimisation steps", minimum=1)


def _batch() -> Any:
    return setting(4, help="batch size", minimum=1)


def _lr(default: float = 2e-4) -> Any:
    return setting(default, help="Adam learning rate (linear decay over the second half)", above=0)


def _options(what: str, factory: Callable[[], dict[str, Any]] = dict) -> Any:
    return setting(factory=factory, help=f"{what} options (--option key=value)")


TEACHER_METHODS = ("pix2pix", "cyclegan", "stylegan2")

DEFAULT_TEACHER = "unet64:ngf=32,upsample=resize"
"""The built-in teacher: pix2pix's U-Net at 64 px (6 downsamplings, skips at every resolution) with
resize-conv upsampling (no checkerboard); trained at lr 1e-3 with an SSIM term (``lambda_ssim`` 30)
beside L1 and the GAN loss, 1200 steps: measured 24.2 dB / SSIM 0.71 on the held-out crops where
copying the input scores 18.2 dB / 0.43 (README, "pocketgan run")."""
DEFAULT_STUDENT = "unet64:ngf=24,upsample=resize,block=separable"
"""The built-in students: the same U-Net with depthwise-separable blocks, 5.41 M MACs at 64 px, 32× fewer
than the teacher's 174 M (a plain U-Net that cheap has ngf 5 and learns 1 dB less: README)."""
DEFAULT_OMGD = {"use_deep": False, "teacher_lr": 1e-4, "agd_weights": "10,0,10,0", "lambda_cd": 10.0}
"""OMGD for the imported teacher, each change measured (README): no deep teacher (one trained from scratch
in 500 steps only adds noise to the student's targets), the wide one fine-tuned online at 1e-4 (at the
run's 1e-3 it drifts off what it learned), no style or TV term (on the domain network, the Gram-matrix
term paints colour blotches: 16.7 dB with it, 22.2 dB without) and λ_CD 10; 1000 steps (23.0 dB, 1.3 dB
below the teacher; 500 steps: 22.2 dB)."""


@dataclass(kw_only=True)
class TeacherConfig:
    """The teacher (pix2pix on paired data, cyclegan on unpaired, stylegan2 on images): trained here, or imported
    with ``from``."""

    method: str = setting("pix2pix", help="pix2pix (paired data), cyclegan (unpaired: trainA/ + trainB/) or "
                          "stylegan2 (unconditional: a folder of images)", choices=TEACHER_METHODS)  # fmt: skip
    arch: str = setting(DEFAULT_TEACHER, help="teacher architecture")
    source: str | None = setting(
        None, key="from", help="a model directory or an official latest_net_G.pth to import instead of training"
    )
    steps: int = _steps(1200)
    batch: int = _batch()
    lr: float = _lr(1e-3)
    options: dict[str, Any] = _options("teacher method", factory=lambda: {"lambda_ssim": 30.0})


@dataclass(kw_only=True)
class StudentConfig:
    """One student distilled from the teacher."""

    name: str = setting(help="the student's name in the report (and its directory)")
    method: str = setting(help="distillation method: omgd, gan-compression or kd")
    student: str | None = setting(
        None, help="student architecture, or a model directory (e.g. a pruned teacher); null (StyleGAN2 methods): "
        "the teacher pruned uniformly to options.ratio"
    )
    steps: int = _steps(500)
    batch: int = _batch()
    lr: float = _lr()
    options: dict[str, Any] = _options("method")


def default_students() -> list[StudentConfig]:
    """OMGD and the plain-KD floor, both into a 32× cheaper separable U-Net (see :data:`DEFAULT_STUDENT`)."""
    return [
        StudentConfig(name="omgd-sep24", method="omgd", student=DEFAULT_STUDENT, steps=1000, lr=1e-3,
                      options=dict(DEFAULT_OMGD)),  # fmt: skip
        StudentConfig(name="kd-sep24", method="kd", student=DEFAULT_STUDENT, steps=1000, lr=1e-3),
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

    format: str = setting("onnx", help="artifact format: onnx, ort or openvino (benched with its runtime backend)")
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

    name: str = setting("photos2stylized-default", help="the run's title in the report")
    seed: int = setting(0, help="seeds the dataset builder and every training stage", minimum=0)
    size: int = setting(64, help="image side in pixels, for every stage", minimum=16)
    data: DataConfig = setting(factory=DataConfig, help="the images: pairs, unpaired domains, or single images")
    teacher: TeacherConfig = setting(factory=TeacherConfig, help="the teacher (pix2pix, cyclegan or stylegan2)")
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
The built-in recipe: photo crops → the same crops stylized (photos2stylized) at 64 px, a pix2pix U-Net
teacher (ngf 32, resize-conv upsampling, an SSIM term), 32x cheaper separable U-Net students (ngf 24)
distilled with OMGD beside the plain-KD floor, exported to ONNX and benchmarked. Sized to finish within
8 minutes on a 2-core CPU from a cold start; `pocketgan run edges2photos` is the paper-like setting
(see README)."""


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


def edges2photos_recipe() -> dict[str, Any]:
    """``pocketgan run edges2photos``: the paper-like setting (edges → photos, as edges2shoes) at CPU scale.

    A pix2pix ResNet-9 teacher (ngf 32, 800 steps at 2e-4) and 36× cheaper Mobile-ResNet students (ngf 8):
    the built-in recipe before the stylized one. At this budget the teacher only learns a colour average
    of eight unrelated photographs (12 dB), so it shows the machinery, not compression quality.
    """
    students = [
        {"name": "omgd-ngf8", "method": "omgd", "student": "mobile-resnet:ngf=8", "lr": 2e-4,
         "options": {"deep_ngf": 8, "deep_blocks": 9}},
        {"name": "kd-ngf8", "method": "kd", "student": "mobile-resnet:ngf=8", "lr": 2e-4},
    ]  # fmt: skip
    return {
        "name": "edges2photos-default",
        "data": {"builder": "edges2photos", "count": 600, "val_count": 48},
        "teacher": {"arch": "resnet9:ngf=32", "steps": 800, "batch": 4, "lr": 2e-4, "options": {}},
        "students": students,
    }


STYLEGAN2_RATES = (0.7, 0.8, 0.9, 0.95)
"""The uniform pruning ratios of NICKEL & DiME (90.73 %–99.69 % fewer MACs on paper256 at 256 px)."""
STYLEGAN2_TEACHER = "stylegan2:size=32,channel_base=1024,channel_max=64,z_dim=64,w_dim=64,n_mlp=2"


def stylegan2_recipe(method: str = "nickel-dime") -> dict[str, Any]:
    """``pocketgan run stylegan2``: a StyleGAN2 teacher trained here on digits, and ``method`` students of it
    pruned uniformly at P = 0.7, 0.8, 0.9 and 0.95 (every layer keeps ``ceil((1 - P) × width)`` channels).

    32 px, widths 64 at every resolution (channel_base 1024), z = w = 64, a 2-layer mapping: sized so
    the whole run finishes within 10 minutes on a 2-core CPU from a cold start (see README). FID/KID
    use the digits' own feature network; the students' "teacher" columns compare their image with the
    teacher's for the same latent. ``snapshot_every``: the weights every so many steps, for the report's
    FID-over-training panel.
    """
    students = [
        {"name": f"{method}-p{round(rate * 100)}", "method": method, "student": None, "steps": 300, "batch": 16,
         "lr": 0.002, "options": {"ratio": rate, "snapshot_every": 50}}
        for rate in STYLEGAN2_RATES
    ]  # fmt: skip
    return {
        "name": "digits-stylegan2",
        "size": 32,
        "data": {"builder": "digits", "count": 1400, "val_count": 300},
        "teacher": {"method": "stylegan2", "arch": STYLEGAN2_TEACHER, "steps": 800, "batch": 16, "lr": 0.002,
                    "options": {"snapshot_every": 100}},
        "features": {"steps": 150},
        "students": students,
    }


NAMED_RECIPES: dict[str, Callable[[], dict[str, Any]]] = {
    "default": dict, "stylized": dict, "edges2photos": edges2photos_recipe, "cyclegan": cyclegan_recipe,
    "stylegan2": stylegan2_recipe,
}  # fmt: skip
"""Built-in recipes ``pocketgan run NAME`` selects: recipe data read over ``RunConfig()`` (``default`` and its
older name ``stylized``: itself)."""


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
    """Recursive dict merge; lists, scalars and ``options`` in ``update`` replace those in ``base``.

    ``options`` belong to a method: a recipe that gives a section's options gives all of them (the
    built-in teacher's ``lambda_ssim`` must not reach a cyclegan or stylegan2 teacher).
    """
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "options":
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
        if student.student is None and "ratio" not in student.options:
            raise PocketganError(
                f"recipe: students.{i} needs student (an architecture or a model directory), or "
                "options.ratio to start from the teacher pruned uniformly (StyleGAN2 methods)"
            )
    if config.prune is not None:
        if config.prune.student not in names:
            raise PocketganError(
                f"prune.student must name one of the students ({', '.join(sorted(names))}); "
                f"got {config.prune.student!r}"
            )
        if len(config.prune.target()) != 1:
            raise PocketganError("prune needs exactly one of ratio, target_rate, target_macs")
    if config.export.format not in RUN_FORMATS:
        known = config.export.format in FORMATS
        reason = "has no runtime backend to bench it here" if known else "is not an export format"
        hint = "" if known else did_you_mean(config.export.format, FORMATS)
        raise PocketganError(
            f"export.format {config.export.format!r}{hint} {reason}: pocketgan "
            f"run exports {', '.join(RUN_FORMATS[:-1])} or {RUN_FORMATS[-1]} (the formats its bench stage can run "
            "on this host's kind); export other formats from "
            "RUN/models with `pocketgan export MODEL --format FORMAT` (see --list-formats)"
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
