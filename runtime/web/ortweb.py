"""onnxruntime-web for the browser demo: one pinned npm package, fetched once into the cache, copied into sites.

The page loads ``ort.min.mjs`` (onnxruntime-web's default build: the WASM backend with SIMD and threads,
and WebGPU through JSEP) and the two files it loads at run time. They come from
``onnxruntime-web@ORT_WEB_VERSION``: ``npm pack`` downloads the package tarball once into
``$POCKETGAN_CACHE/ort-web`` (default ``~/.cache/pocketgan/ort-web``), checked against the pinned
``sha512`` integrity, and only those files are extracted, so later builds are offline. Without npm,
``--ort-web DIR`` names a folder that has them (an ``npm install``'s ``node_modules/onnxruntime-web``,
its ``dist/``, or any copy). ``--cdn`` loads the same pinned files from jsDelivr instead (opt-in only).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from pocketgan.core.errors import PocketganError

ORT_WEB_PACKAGE = "onnxruntime-web"
ORT_WEB_VERSION = "1.30.0"
"""The one pin of onnxruntime-web (change it together with :data:`ORT_WEB_INTEGRITY`)."""
ORT_WEB_INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
"""npm's ``dist.integrity`` of the pinned version (``npm view onnxruntime-web@1.30.0 dist.integrity``)."""
ORT_WEB_FILES = ("ort.min.mjs", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")
"""The files the page needs from the package's ``dist/``: the module and the WASM (SIMD + threads, JSEP) it loads."""
CDN_BASE = f"https://cdn.jsdelivr.net/npm/{ORT_WEB_PACKAGE}@{ORT_WEB_VERSION}/dist/"
NPM_TIMEOUT_S = 300


def cache_root() -> Path:
    """``$POCKETGAN_CACHE/ort-web`` when the variable is set, else ``~/.cache/pocketgan/ort-web``."""
    root = os.environ.get("POCKETGAN_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "pocketgan") / "ort-web"


def tarball_name(version: str = ORT_WEB_VERSION) -> str:
    """The file ``npm pack`` writes: ``onnxruntime-web-1.30.0.tgz``."""
    return f"{ORT_WEB_PACKAGE}-{version}.tgz"


def cached_ort_web() -> Path:
    """The folder holding :data:`ORT_WEB_FILES` of the pinned version, fetched with ``npm pack`` on first use.

    Raises a one-line error when npm is missing (saying how to give the files with ``--ort-web DIR``),
    when ``npm pack`` fails, or when the tarball does not match :data:`ORT_WEB_INTEGRITY`. Safe when several
    processes fill the cache at once (each writes a private temporary and renames it into place).
    """
    folder = cache_root() / ORT_WEB_VERSION
    if _complete(folder):
        return folder
    tarball = cache_root() / tarball_name()
    if not tarball.is_file() or integrity(tarball) != ORT_WEB_INTEGRITY:
        npm_pack(tarball)
    check_integrity(tarball)
    scratch = Path(tempfile.mkdtemp(prefix=f".{ORT_WEB_VERSION}.", suffix=".tmp", dir=cache_root()))
    try:
        extract_dist(tarball, scratch)
        os.chmod(scratch, 0o755)
        try:
            os.rename(scratch, folder)
        except OSError:  # another process finished first
            if not _complete(folder):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ORT_WEB_FILES)


def npm_pack(tarball: Path) -> None:
    """Download the pinned package tarball to ``tarball`` with ``npm pack`` (npm verifies the registry's checksum)."""
    npm = shutil.which("npm")
    if npm is None:
        raise PocketganError(
            f"npm not found: it fetches {ORT_WEB_PACKAGE}@{ORT_WEB_VERSION} once (then cached in {cache_root()}); "
            f"install Node.js/npm, or give the files with --ort-web DIR (a folder with {', '.join(ORT_WEB_FILES)}, "
            f"e.g. node_modules/{ORT_WEB_PACKAGE}/dist after 'npm install {ORT_WEB_PACKAGE}@{ORT_WEB_VERSION}'), "
            "or load them from a CDN with --cdn"
        )
    tarball.parent.mkdir(parents=True, exist_ok=True)
    spec = f"{ORT_WEB_PACKAGE}@{ORT_WEB_VERSION}"
    with tempfile.TemporaryDirectory(prefix=".npm-pack.", dir=tarball.parent) as scratch:
        command = [npm, "pack", spec, "--pack-destination", scratch, "--silent"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise PocketganError(
                f"npm pack {spec} took over {NPM_TIMEOUT_S} s; check the network or use --ort-web DIR"
            ) from None
        packed = Path(scratch) / tarball.name
        if done.returncode != 0 or not packed.is_file():
            reason = next((line for line in done.stderr.splitlines() if line.strip()), f"exit {done.returncode}")
            raise PocketganError(f"npm pack {spec} failed ({reason.strip()}); give the files with --ort-web DIR")
        os.replace(packed, tarball)


def integrity(path: Path) -> str:
    """npm's ``sha512-<base64>`` integrity string of a file."""
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode("ascii")


def check_integrity(tarball: Path) -> None:
    """One-line error unless ``tarball`` is the pinned package (a truncated or replaced download)."""
    if integrity(tarball) != ORT_WEB_INTEGRITY:
        raise PocketganError(
            f"{tarball}: does not match the pinned {ORT_WEB_PACKAGE}@{ORT_WEB_VERSION} integrity; delete it and retry"
        )


def extract_dist(tarball: Path, folder: Path) -> None:
    """Extract :data:`ORT_WEB_FILES` from the package tarball's ``package/dist/`` into ``folder``."""
    with tarfile.open(tarball, "r:gz") as archive:
        for name in ORT_WEB_FILES:
            try:
                member = archive.getmember(f"package/dist/{name}")
            except KeyError:
                raise PocketganError(f"{tarball}: has no dist/{name}") from None
            source = archive.extractfile(member)
            if source is None:
                raise PocketganError(f"{tarball}: dist/{name} is not a file")
            with source, open(folder / name, "wb") as target:
                shutil.copyfileobj(source, target)


def user_ort_web(directory: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """The folder with :data:`ORT_WEB_FILES` that ``--ort-web`` names (the package root or its ``dist/``), and
    the version its ``package.json`` states (``None`` if it has none); one-line error naming a missing file."""
    root = Path(directory)
    if not root.is_dir():
        raise PocketganError(f"--ort-web {directory}: no such directory")
    folder = root / "dist" if (root / "dist" / ORT_WEB_FILES[0]).is_file() else root
    missing = [name for name in ORT_WEB_FILES if not (folder / name).is_file()]
    if missing:
        raise PocketganError(
            f"--ort-web {directory}: missing {', '.join(missing)} (the files of {ORT_WEB_PACKAGE}'s dist/, "
            f"version {ORT_WEB_VERSION})"
        )
    return folder, _package_version(folder.parent if folder != root else root)


def _package_version(root: Path) -> str | None:
    try:
        data = json.loads((root / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = data.get("version") if isinstance(data, dict) and data.get("name") == ORT_WEB_PACKAGE else None
    return str(version) if version else None
