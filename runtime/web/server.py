"""Serve a built site with what onnxruntime-web's threads need (standard library ``http.server``).

WASM threads use ``SharedArrayBuffer``, which browsers enable only on a cross-origin-isolated page:
every response carries ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp`` (and ``Cross-Origin-Resource-Policy: same-origin``).
``.wasm`` is served as ``application/wasm`` (streaming compilation) and ``.mjs`` as JavaScript.
Camera access (``getUserMedia``) needs a secure context: ``http://localhost`` / ``127.0.0.1``, or HTTPS
(``certfile``/``keyfile``).
"""

from __future__ import annotations

import functools
import os
import ssl
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pocketgan.core.errors import PocketganError

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
MIME_TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".json": "application/json",
    ".onnx": "application/octet-stream",
    ".ort": "application/octet-stream",
}


class SiteHandler(SimpleHTTPRequestHandler):
    """Static files of one folder with the cross-origin isolation headers and the WASM/module MIME types."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def end_headers(self) -> None:
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        """Quiet: the CLI prints the URL once; requests are not logged."""


class SiteServer(ThreadingHTTPServer):
    """A threading HTTP(S) server of one site folder; ``url`` is where to open it."""

    daemon_threads = True

    def __init__(self, site: Path, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        handler = functools.partial(SiteHandler, directory=str(site))
        try:
            super().__init__((host, port), handler)
        except OSError as exc:
            raise PocketganError(f"cannot serve on {host}:{port} ({exc.strerror or exc})") from None
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:8000/`` (the bound port; an IPv6 host in brackets)."""
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"{self.scheme}://{shown}:{port}/"

    def start(self) -> threading.Thread:
        """Serve in a daemon thread (tests, notebooks); stop with :meth:`shutdown` then :meth:`server_close`."""
        thread = threading.Thread(target=self.serve_forever, name="pocketgan-web", daemon=True)
        thread.start()
        return thread


def tls_context(certfile: str | os.PathLike[str], keyfile: str | os.PathLike[str] | None) -> ssl.SSLContext:
    """A server TLS context from a PEM certificate (and key); one-line error if they do not load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    except (OSError, ssl.SSLError) as exc:
        raise PocketganError(f"cannot load the TLS certificate {certfile} ({exc})") from None
    return context


def serve_site(
    site: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
) -> SiteServer:
    """A :class:`SiteServer` bound to ``host:port`` (0: a free port) for the site folder ``site``; call
    ``serve_forever()`` (blocking) or :meth:`SiteServer.start`."""
    folder = Path(site)
    if not (folder / "index.html").is_file():
        raise PocketganError(f"{site}: no index.html; build the site with pocketgan web ARTIFACT --out DIR")
    if keyfile and not certfile:
        raise PocketganError("--key needs --cert")
    tls = tls_context(certfile, keyfile) if certfile else None
    return SiteServer(folder, host, port, tls)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def access_notes(server: SiteServer) -> list[str]:
    """What to tell the user about opening the page, camera included (a secure context: HTTPS or localhost)."""
    host, port = server.server_address[:2]
    if server.scheme == "https":
        return [f"HTTPS: the camera works from other devices at https://<this machine's address>:{port}/ "
                "once the browser trusts the certificate"]  # fmt: skip
    notes = [] if str(host) in LOOPBACK_HOSTS else [
        f"note: over plain HTTP only http://localhost:{port}/ is a secure context; from another address the "
        "browser blocks the camera (uploads still work)"
    ]  # fmt: skip
    return notes + [
        f"from a phone: 'adb reverse tcp:{port} tcp:{port}' (Android, USB) or an SSH tunnel "
        f"'ssh -L {port}:localhost:{port} <this machine>', then open http://localhost:{port}/; or serve HTTPS "
        "with --cert/--key (see README: Browser demo)"
    ]
