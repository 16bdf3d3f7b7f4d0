"""The contract between pipeline stages: model directories and artifact sidecars.

A *model directory* holds ``model.safetensors`` and ``model.json`` (a
:class:`ModelManifest`): the architecture spec that rebuilds the generator
(per-layer widths included, so pruned models rebuild exactly), how pixels enter
and leave it (:class:`IOSpec`), where the weights came from, and their profile.

An *artifact* (``model.onnx``, a TensorRT engine, an ``.mlpackage``) carries a
sidecar ``<artifact>.json`` (an :class:`ArtifactManifest`) with its tensor names,
shapes, I/O spec, checksum and parity against PyTorch.

Every file is validated against the dataclasses' annotations by :func:`parse`: an
unknown key, a missing field or a wrong type is one :class:`ManifestError` line that
names the field. This module uses the standard library only: the torch-free runtime imports it.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import os
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from pocketgan.core.errors import ManifestError
from pocketgan.core.fsio import read_json, write_json_atomic
from pocketgan.core.registry import did_you_mean

FORMAT_VERSION = 3
"""Version 2: :class:`IOSpec` says ``scale``/``offset``/``channel_order``/``layout``/``interpolation``
instead of version 1's ``value_range`` and prose ``normalization``; version-1 files are upgraded on read.
Version 3: :class:`IOSpec` gains the input kind (``image`` | ``latent``) with ``z_dim``, ``num_classes``,
``truncation`` and ``noise_mode``; a version-2 file is a version-3 file of an image generator."""
MODEL_JSON = "model.json"
MODEL_WEIGHTS = "model.safetensors"
T = TypeVar("T")


# ---------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Check:
    """A constraint beyond the type, for ``Annotated[int, Check(...)]`` fields (names for messages)."""

    test: Callable[[Any], bool]
    singular: str
    plural: str


PositiveInt = Annotated[int, Check(lambda v: v > 0, "a positive integer", "positive integers")]
PositiveFloat = Annotated[float, Check(lambda v: 0 < v < float("inf"), "a positive number", "positive numbers")]


class _Invalid(Exception):
    """A validation failure at ``path`` (``spec.widths``); ``mismatch``: the value has the wrong type."""

    def __init__(self, path: str, message: str, *, mismatch: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.mismatch = mismatch


def parse(cls: type[T], data: Any, source: str) -> T:
    """Build dataclass ``cls`` from JSON ``data``, checking every field against its annotation.

    Annotations understood: ``int``, ``float``, ``str``, ``bool``, ``Any``, ``Literal[...]``, nested
    dataclasses, ``list[X]``, ``tuple[X, Y]``, ``tuple[X, ...]``, ``dict[str, X]``, unions and
    ``X | None``, and ``Annotated[X, Check(...)]``. JSON lists become tuples where a tuple is
    declared. Fields with ``init=False`` are derived: accepted and recomputed. Unknown keys,
    missing fields and wrong types raise one :class:`ManifestError` line naming the field, e.g.
    ``model.json: spec.widths must be an object mapping names to positive integers or null, got a list``.
    """
    try:
        return _convert(cls, data, "")
    except _Invalid as exc:
        raise ManifestError(f"{source}: {exc}") from None


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin is Annotated:
        try:
            converted = _convert(args[0], value, path)
        except _Invalid as exc:
            raise _mismatch(tp, value, path) if exc.mismatch and exc.path == path else exc from None
        if any(isinstance(c, Check) and not c.test(converted) for c in args[1:]):
            raise _mismatch(tp, value, path)
        return converted
    if origin in (Union, types.UnionType):
        return _convert_union(tp, value, path)
    if dataclasses.is_dataclass(tp):
        return _convert_record(tp, value, path)
    if origin in (list, tuple, dict):
        return _convert_container(tp, value, path)
    return _convert_scalar(tp, value, path)


def _convert_union(tp: Any, value: Any, path: str) -> Any:
    options = get_args(tp)
    if value is None and type(None) in options:
        return None
    deeper: _Invalid | None = None
    for option in (o for o in options if o is not type(None)):
        try:
            return _convert(option, value, path)
        except _Invalid as exc:
            if not (exc.mismatch and exc.path == path):
                deeper = deeper or exc  # right type, wrong content: that error says more
    raise deeper or _mismatch(tp, value, path)


def _convert_record(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise _mismatch(cls, value, path)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in value:
        if key not in fields:
            hint = did_you_mean(str(key), fields) or f" (expected {', '.join(fields)})"
            raise _Invalid(path, f"unknown key {_join(path, str(key))}{hint}")
    inputs = [f for f in fields.values() if f.init]
    required = [f.name for f in inputs if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in value]
    if missing:
        raise _Invalid(path, f"{path + ' is ' if path else ''}missing {', '.join(missing)}")
    hints = _type_hints(cls)
    given = [f.name for f in inputs if f.name in value]
    converted = {name: _convert(hints[name], value[name], _join(path, name)) for name in given}
    try:
        return cls(**converted)
    except ManifestError as exc:  # a check across fields (IOSpec: a latent input needs z_dim)
        detail = str(exc).removeprefix(f"{cls.__name__}: ")
        raise _Invalid(path, f"{path + ': ' if path else ''}{detail}") from None


def _convert_container(tp: Any, value: Any, path: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _mismatch(tp, value, path)
        item = args[1] if args else Any
        return {k: _convert(item, v, _join(path, k)) for k, v in value.items()}
    if not isinstance(value, (list, tuple)):
        raise _mismatch(tp, value, path)
    if origin is list:
        return [_convert(args[0] if args else Any, v, f"{path}[{i}]") for i, v in enumerate(value)]
    items = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
    if len(items) != len(value):
        raise _mismatch(tp, value, path)
    return tuple(_convert(t, v, f"{path}[{i}]") for i, (t, v) in enumerate(zip(items, value)))


def _convert_scalar(tp: Any, value: Any, path: str) -> Any:
    if get_origin(tp) is Literal:
        if any(value == choice and type(value) is type(choice) for choice in get_args(tp)):
            return value
    elif tp is bool and isinstance(value, bool) or tp is str and isinstance(value, str):
        return value
    elif tp is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    elif tp is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    elif tp not in (bool, str, int, float):
        raise TypeError(f"{path}: the validator does not understand the annotation {tp!r}")
    raise _mismatch(tp, value, path)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls, include_extras=True)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mismatch(tp: Any, value: Any, path: str) -> _Invalid:
    subject = path or "the file"
    return _Invalid(path, f"{subject} must be {expectation(tp)}, got {describe_json(value)}", mismatch=True)


_SCALARS = {
    bool: ("true or false", "booleans"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
}


def expectation(tp: Any, plural: bool = False) -> str:
    """What a value of annotation ``tp`` must be, in words: ``"a list of TensorInfo objects"``."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        check = next((a for a in args[1:] if isinstance(a, Check)), None)
        return (check.plural if plural else check.singular) if check else expectation(args[0], plural)
    if origin in (Union, types.UnionType):
        text = " or ".join(expectation(a, plural) for a in args if a is not type(None))
        return text + " or null" if type(None) in args else text
    if origin is Literal:
        choices = ", ".join(repr(a) for a in args)
        return choices if len(args) == 1 else ("values among " if plural else "one of ") + choices
    if dataclasses.is_dataclass(tp):
        article = "an" if tp.__name__[0] in "AEIOU" else "a"
        return f"{tp.__name__} objects" if plural else f"{article} {tp.__name__} object"
    if origin in (list, tuple):
        fixed = origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)
        count = f"{len(args)} " if fixed else ""
        return f"{'lists' if plural else 'a list'} of {count}{expectation(args[0], True) if args else 'values'}"
    if origin is dict:
        return f"{'objects' if plural else 'an object'} mapping names to {expectation(args[1], True)}"
    if tp is Any:
        return "values" if plural else "any value"
    return _SCALARS[tp][plural]


def describe_json(value: Any) -> str:
    """A JSON value in words for an error message: ``a list``, ``the string 'nope'``, ``the number 5``."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40] + '…' if len(value) > 40 else value!r}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}" if value else "an empty list"
    return "an object" if isinstance(value, dict) else f"a {type(value).__name__}"


class Record:
    """A dataclass readable from JSON with :func:`parse` (``Type.from_dict(data)``)."""

    @classmethod
    def from_dict(cls: type[T], data: Any, source: str | None = None) -> T:
        """Validate ``data`` (a JSON object) and build the record; ``source`` prefixes error messages."""
        return parse(cls, data, source or cls.__name__)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object this record is written as."""
        return asdict(self)  # type: ignore[call-overload]


# ---------------------------------------------------------------------------------------- the types


@dataclass
class GeneratorSpec(Record):
    """Everything needed to rebuild a generator: ``arch`` + ``config`` + per-layer ``widths``.

    ``widths`` maps a conv module's name (as in the state dict) to its output
    channels; ``None`` means the architecture's default widths.
    """

    arch: str
    config: dict[str, Any] = field(default_factory=dict)
    widths: dict[str, PositiveInt] | None = None


ChannelOrder = Literal["RGB", "BGR"]
Layout = Literal["NCHW"]
Interpolation = Literal["area", "linear", "cubic", "nearest", "lanczos"]
"""Resize filters (mapped to OpenCV flags by :mod:`pocketgan.imaging`). ``area``: pixel-area averaging
when shrinking (no aliasing; ``INTER_AREA``) and bicubic when enlarging; the others in both directions."""


InputKind = Literal["image", "latent"]
"""``image``: an image-to-image generator (pix2pix, ResNet); ``latent``: it takes a latent ``z`` (StyleGAN2)."""
NoiseMode = Literal["const", "random"]
"""``const``: the generator's stored noise buffers (deterministic); ``random``: fresh noise every call."""
FiniteFloat = Annotated[float, Check(lambda v: abs(v) < float("inf"), "a finite number", "finite numbers")]


@dataclass
class IOSpec(Record):
    """How pixels (or latents) enter the generator and pixels leave it, machine-readable.

    ``input_kind="image"``: a ``uint8`` image in ``channel_order`` becomes ``x * scale + offset``
    (float32, ``layout``), resized to the model's size with ``interpolation``; the height and width
    must be multiples of ``size_multiple`` (or exactly ``fixed_size`` for an artifact built for one size).

    ``input_kind="latent"``: the input is a latent ``z`` of shape ``(batch, z_dim)`` drawn from a
    standard normal (``num_classes`` set for a class-conditional generator), mapped with truncation
    ``ψ = truncation`` (``w_avg + ψ (w - w_avg)``; 1.0 is none) and noise ``noise_mode``;
    ``fixed_size`` is the image size it makes and ``input_channels`` is unused.

    Outputs of both kinds map back to ``uint8`` by inverting ``scale``/``offset``.
    ``normalization`` is a derived one-line description.
    """

    input_channels: PositiveInt = 3
    output_channels: PositiveInt = 3
    scale: PositiveFloat = 1 / 127.5
    offset: float = -1.0
    channel_order: ChannelOrder = "RGB"
    layout: Layout = "NCHW"
    interpolation: Interpolation = "area"
    size_multiple: PositiveInt = 4
    fixed_size: tuple[PositiveInt, PositiveInt] | None = None
    input_kind: InputKind = "image"
    z_dim: PositiveInt | None = None
    num_classes: PositiveInt | None = None
    truncation: FiniteFloat = 1.0
    noise_mode: NoiseMode = "const"
    normalization: str = field(init=False, default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        hints = _type_hints(IOSpec)
        try:  # a Python caller gets the same checks (and list → tuple) as a JSON file
            for f in dataclasses.fields(self):
                if f.init:
                    setattr(self, f.name, _convert(hints[f.name], getattr(self, f.name), f.name))
        except _Invalid as exc:
            raise ManifestError(f"IOSpec: {exc}") from None
        problem = self._kind_problem()
        if problem:
            raise ManifestError(f"IOSpec: {problem}")
        self.normalization = self.describe()

    def _kind_problem(self) -> str | None:
        if self.input_kind == "latent":
            return None if self.z_dim is not None else "a latent input needs z_dim (the latent's size)"
        latent_only = [name for name in ("z_dim", "num_classes") if getattr(self, name) is not None]
        if self.truncation != 1.0:
            latent_only.append("truncation")
        if self.noise_mode != "const":
            latent_only.append("noise_mode")
        if latent_only:
            verb = "applies" if len(latent_only) == 1 else "apply"
            return f"{', '.join(latent_only)} only {verb} to input_kind 'latent' (this input is an image)"
        return None

    @classmethod
    def from_value_range(cls, low: float, high: float, **fields: Any) -> IOSpec:
        """The spec that maps pixel 0 to ``low`` and 255 to ``high`` (e.g. ``(0, 1)``: ``x / 255``)."""
        if not high > low:
            raise ManifestError(f"IOSpec: value range [{low}, {high}] must have high > low")
        return cls(scale=(high - low) / 255.0, offset=float(low), **fields)

    @classmethod
    def latent(cls, z_dim: int, size: int | tuple[int, int] | None = None, **fields: Any) -> IOSpec:
        """The spec of a latent-input generator making ``size`` images from ``z`` of ``z_dim`` values."""
        fixed = (size, size) if isinstance(size, int) else size
        return cls(input_kind="latent", z_dim=z_dim, fixed_size=fixed, **fields)

    @property
    def is_latent(self) -> bool:
        """True for a generator whose input is a latent ``z`` rather than an image."""
        return self.input_kind == "latent"

    def input_shape(self, batch: int, size: tuple[int, int]) -> tuple[int, ...]:
        """The input tensor's shape for ``batch`` outputs of ``size``: ``(batch, z_dim)`` for a latent
        input, ``(batch, input_channels, height, width)`` for an image."""
        if self.is_latent:
            return (batch, int(self.z_dim or 0))
        return (batch, self.input_channels, int(size[0]), int(size[1]))

    @property
    def value_range(self) -> tuple[float, float]:
        """The floats that pixel values 0 and 255 map to: ``(offset, 255 * scale + offset)``."""
        return (self.offset, 255.0 * self.scale + self.offset)

    def describe(self) -> str:
        """``x / 127.5 - 1 (uint8 RGB to [-1, 1], NCHW; area resize)``, or for a latent input
        ``z ~ N(0, I) of 32 values, truncation 0.7, const noise; output [-1, 1] to uint8 RGB, NCHW``."""
        low, high = self.value_range
        if self.is_latent:
            classes = f", {self.num_classes} classes" if self.num_classes else ""
            return (
                f"z ~ N(0, I) of {self.z_dim} values{classes}, truncation {self.truncation:g}, "
                f"{self.noise_mode} noise; output [{low:g}, {high:g}] to uint8 {self.channel_order}, {self.layout}"
            )
        sign = "-" if self.offset < 0 else "+"
        shift = f" {sign} {abs(self.offset):g}" if self.offset else ""
        return (
            f"x / {1 / self.scale:g}{shift} (uint8 {self.channel_order} to [{low:g}, {high:g}], "
            f"{self.layout}; {self.interpolation} resize)"
        )


@dataclass
class Profile(Record):
    """Compute cost at one input shape. ``macs`` follows ``counter``'s convention."""

    macs: int
    params: int
    input_shape: list[int]
    counter: str = "fvcore"
    convention: str = "1 fused multiply-add = 1 MAC; ConvTranspose counted over input positions"


@dataclass
class ModelManifest(Record):
    """``model.json`` of a model directory."""

    spec: GeneratorSpec
    io: IOSpec = field(default_factory=IOSpec)
    provenance: dict[str, Any] = field(default_factory=dict)
    profile: Profile | None = None
    weights_sha256: str | None = None
    format_version: int = FORMAT_VERSION
    kind: Literal["generator"] = "generator"

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> ModelManifest:
        """Validate a ``model.json`` object (any version this pocketgan reads) and build the manifest."""
        return _parse_manifest(cls, data, source or "model manifest")

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str]) -> ModelManifest:
        """Read and validate ``model_dir/model.json``."""
        path = Path(model_dir) / MODEL_JSON
        return cls.from_dict(read_json(path), str(path))

    def save(self, model_dir: str | os.PathLike[str]) -> Path:
        return write_json_atomic(Path(model_dir) / MODEL_JSON, self.to_dict())


@dataclass
class TensorInfo(Record):
    """One input or output of an artifact. Dynamic dims are strings (``"batch"``)."""

    name: str
    shape: list[int | str]
    dtype: str = "float32"


@dataclass
class Parity(Record):
    """Agreement of an artifact with the PyTorch model on sample inputs."""

    max_abs: float
    mean_abs: float
    psnr_db: float
    atol: float
    samples: int
    passed: bool


@dataclass
class ArtifactManifest(Record):
    """Sidecar ``<artifact>.json`` of an exported model."""

    format: str
    file: str
    sha256: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    io: IOSpec = field(default_factory=IOSpec)
    precision: str = "fp32"
    exporter: str = ""
    opset: int | None = None
    parity: Parity | None = None
    source: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    kind: Literal["artifact"] = "artifact"

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> ArtifactManifest:
        """Validate a sidecar object (any version this pocketgan reads) and build the manifest."""
        return _parse_manifest(cls, data, source or "artifact sidecar")

    @classmethod
    def for_artifact(cls, artifact: str | os.PathLike[str]) -> ArtifactManifest | None:
        """The sidecar next to ``artifact`` (``model.onnx`` → ``model.onnx.json``), if any."""
        path = sidecar_path(artifact)
        return cls.from_dict(read_json(path), str(path)) if path.exists() else None

    def save(self, artifact: str | os.PathLike[str]) -> Path:
        return write_json_atomic(sidecar_path(artifact), self.to_dict())


def sidecar_path(artifact: str | os.PathLike[str]) -> Path:
    """``model.onnx`` → ``model.onnx.json``."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


# ---------------------------------------------------------------------------------------- versions

M = TypeVar("M", ModelManifest, ArtifactManifest)


def _parse_manifest(cls: type[M], data: Any, source: str) -> M:
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: must be a JSON object, got {describe_json(data)}")
    version = data.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ManifestError(f"{source}: format_version must be a positive integer, got {describe_json(version)}")
    if version > FORMAT_VERSION:
        raise ManifestError(
            f"{source}: format_version {version} is newer than this pocketgan understands "
            f"({FORMAT_VERSION}); upgrade pocketgan"
        )
    if version == 1:
        data = upgrade_v1(data, source)
    manifest = parse(cls, data, source)
    manifest.format_version = FORMAT_VERSION  # what it is now, and what save() writes
    return manifest


def upgrade_v1(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A version-1 manifest as version 2: ``io.value_range`` [low, high] → ``scale``/``offset``.

    Version 1's prose ``io.normalization`` is dropped (version 2 derives it).
    """
    io = data.get("io")
    if not isinstance(io, dict):
        return {k: v for k, v in data.items() if k != "io" or v is not None}
    io = {k: v for k, v in io.items() if k != "normalization"}
    if "value_range" in io:
        try:
            low, high = _convert(tuple[float, float], io.pop("value_range"), "io.value_range")
        except _Invalid as exc:
            raise ManifestError(f"{source}: {exc}") from None
        if not high > low:
            raise ManifestError(f"{source}: io.value_range must be [low, high] with high > low, got [{low}, {high}]")
        io.update(scale=(high - low) / 255.0, offset=low)
    return {**data, "io": io, "format_version": FORMAT_VERSION}
