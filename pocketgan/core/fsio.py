"""Files written safely: atomic writes, JSON with one-line errors, SHA-256 (standard library only)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pocketgan.core.errors import ManifestError


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON file, turning every failure into a one-line :class:`ManifestError`."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: no such file")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from None


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write JSON to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


class atomic_path:
    """Context manager yielding a temporary path that is renamed to ``path`` on success.

    On an exception the temporary file (or directory) is removed and ``path`` is untouched.
    """

    def __init__(self, path: str | os.PathLike[str], *, directory: bool = False) -> None:
        self.path = Path(path)
        self.directory = directory

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.path.name}."
        if self.directory:
            self.tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=self.path.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=self.path.parent)
            os.close(fd)
            self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            if self.directory and self.path.exists():
                _remove(self.path)
            if not self.directory:  # mkstemp creates 0600; give the file the usual permissions
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self.tmp, 0o666 & ~umask)
            os.replace(self.tmp, self.path)
        else:
            _remove(self.tmp)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


