"""``build_site``: the static browser demo of one ONNX generator (onnxruntime-web, no server code).

The site is ``index.html`` + ``app.js`` + ``style.css`` (package data in ``site-template/``), the model file and
its sidecar, ``site.json`` (the page's configuration: :class:`~pocketgan.runtime.web.model.WebModel` and
where onnxruntime-web is), and ``ort/`` with the pinned onnxruntime-web files unless ``cdn``. It is written
to a temporary folder and renamed into place, so a failed build leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pocketgan.core.contract import sidecar_path
from pocketgan.core.errors import PocketganError
from pocketgan.core.fsio import atomic_path
from pocketgan.core.progress import ProgressCallback, ProgressTask
from pocketgan.runtime.web import ortweb
from pocketgan.runtime.web.model import WebModel, describe_model

SITE_JSON = "site.json"
TEMPLATE_DIR = "site-template"
TEMPLATE_FILES = ("index.html", "app.js", "style.css")
ORT_DIR = "ort"


@dataclass
class SiteBuild:
    """What :func:`build_site` wrote: the folder, the model description, where onnxruntime-web loads from."""

    out: Path
    model: WebModel
    ort_web: str
    ort_web_version: str
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def size_bytes(self) -> int:
        """The site's total size on disk."""
        return sum((self.out / name).stat().st_size for name in self.files)


def build_site(
    artifact: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None = None,
    ort_web: str | os.PathLike[str] | None = None,
    cdn: bool = False,
    progress: ProgressCallback | None = None,
) -> SiteBuild:
    """Write the browser demo of ``artifact`` (an ONNX/``.ort`` file or an export directory) to ``out``.

    ``size`` is the input size for a dynamic-size model. onnxruntime-web comes from ``ort_web`` (a folder
    with :data:`~pocketgan.runtime.web.ortweb.ORT_WEB_FILES`), else from the cache (fetched once with npm);
    ``cdn`` loads it from jsDelivr instead and copies nothing. ``out`` must be new, empty or a site this
    function wrote (it is replaced).
    """
    if cdn and ort_web is not None:
        raise PocketganError("--cdn and --ort-web exclude each other: --cdn loads onnxruntime-web from jsDelivr")
    out = Path(out)
    _check_out(out)
    with ProgressTask(progress, "building the browser demo", total=3) as task:
        path, model = describe_model(artifact, size)
        task.advance()
        ort_folder, version, warnings = _ort_source(ort_web, cdn)
        task.advance()
        with atomic_path(out, directory=True) as tmp:
            _write_template(tmp)
            shutil.copyfile(path, tmp / model.file)
            if model.sidecar:
                shutil.copyfile(sidecar_path(path), tmp / model.sidecar)
            if ort_folder is not None:
                (tmp / ORT_DIR).mkdir()
                for name in ortweb.ORT_WEB_FILES:
                    shutil.copyfile(ort_folder / name, tmp / ORT_DIR / name)
            base = ortweb.CDN_BASE if cdn else f"{ORT_DIR}/"
            _write_json(tmp / SITE_JSON, _site_config(model, base, version))
            files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
            os.chmod(tmp, 0o755)  # mkdtemp makes 0700: a web server's user must be able to read the site
        task.advance()
    return SiteBuild(out, model, base, version, files, model.warnings + warnings)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise PocketganError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / SITE_JSON).is_file():
        raise PocketganError(f"{out}: not empty and not a pocketgan web site; choose a new --out folder")


def _ort_source(ort_web: str | os.PathLike[str] | None, cdn: bool) -> tuple[Path | None, str, list[str]]:
    """The folder to copy onnxruntime-web from (``None`` with a CDN), its version, and warnings."""
    if cdn:
        return None, ortweb.ORT_WEB_VERSION, []
    if ort_web is None:
        return ortweb.cached_ort_web(), ortweb.ORT_WEB_VERSION, []
    folder, version = ortweb.user_ort_web(ort_web)
    warnings = []
    if version and version != ortweb.ORT_WEB_VERSION:
        pinned = ortweb.ORT_WEB_VERSION
        warnings.append(f"--ort-web {ort_web} is onnxruntime-web {version}; pocketgan is tested with {pinned}")
    return folder, version or "unknown (--ort-web)", warnings


def _write_template(folder: Path) -> None:
    template = resources.files("pocketgan.runtime.web") / TEMPLATE_DIR
    for name in TEMPLATE_FILES:
        (folder / name).write_bytes((template / name).read_bytes())


def _site_config(model: WebModel, ort_base: str, version: str) -> dict[str, Any]:
    from pocketgan import __version__

    return {
        "pocketgan": __version__,
        "model": model.to_dict(),
        "ort_web": {"package": ortweb.ORT_WEB_PACKAGE, "version": version, "base": ort_base,
                    "module": ortweb.ORT_WEB_FILES[0]},
    }  # fmt: skip


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
