"""`pocketgan web`: the exported student in any phone's browser (onnxruntime-web; torch-free).

A thin wrapper of :mod:`pocketgan.runtime.web`: ``--out DIR`` writes the static site, ``--serve`` serves
it (a built site folder is served as it is).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

ArtifactArg = Annotated[
    Path, typer.Argument(help="An ONNX (.onnx/.ort) artifact or export directory, or a site folder to --serve.")
]
OutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", metavar="DIR", help="Write the site to DIR.")]
ServeOpt = Annotated[bool, typer.Option("--serve", help="Serve the site (with the headers WASM threads need).")]
HostOpt = Annotated[str, typer.Option("--host", help="Address to serve on (0.0.0.0: every interface).")]
PortOpt = Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to serve on (0: a free one).")]
SizeOpt = Annotated[Optional[str], typer.Option("--size", metavar="H|HxW", help="Input size of a dynamic-size model.")]
OrtWebOpt = Annotated[
    Optional[Path],
    typer.Option("--ort-web", metavar="DIR", help="onnxruntime-web's dist/ files to copy (instead of npm's)."),
]
CdnOpt = Annotated[bool, typer.Option("--cdn", help="Load onnxruntime-web from jsDelivr at run time (not offline).")]
CertOpt = Annotated[Optional[Path], typer.Option("--cert", metavar="PEM", help="Serve HTTPS with this certificate.")]
KeyOpt = Annotated[Optional[Path], typer.Option("--key", metavar="PEM", help="The certificate's private key.")]


def register(app: typer.Typer) -> None:
    """Add the `web` verb to `app`."""

    @app.command()
    def web(
        artifact: ArtifactArg,
        out: OutOpt = None,
        serve: ServeOpt = False,
        host: HostOpt = "127.0.0.1",
        port: PortOpt = 8000,
        size: SizeOpt = None,
        ort_web: OrtWebOpt = None,
        cdn: CdnOpt = False,
        cert: CertOpt = None,
        key: KeyOpt = None,
    ) -> None:
        """Write a static page that runs ARTIFACT in the browser (camera, upload, FPS, model card); --serve it."""
        from pocketgan.core.errors import PocketganError
        from pocketgan.core.options import parse_size
        from pocketgan.runtime.web import SITE_JSON

        if out is None and not serve:
            raise PocketganError("give -o/--out DIR to write the site, or --serve to serve it")
        if (artifact / SITE_JSON).is_file():  # an already built site
            if not serve or out is not None:
                raise PocketganError(f"{artifact} is a built site; serve it with pocketgan web {artifact} --serve")
            _serve(artifact, host, port, cert, key)
            return
        with tempfile.TemporaryDirectory(prefix="pocketgan-web-") as scratch:
            site = out if out is not None else Path(scratch) / "site"
            _build(artifact, site, parse_size(size) if size else None, ort_web, cdn)
            if serve:
                _serve(site, host, port, cert, key)


def _build(artifact: Path, site: Path, size: tuple[int, int] | None, ort_web: Path | None, cdn: bool) -> None:
    from pocketgan.console import RichProgress, console, err_console
    from pocketgan.runtime.web import build_site

    with RichProgress() as bar:
        built = build_site(artifact, site, size=size, ort_web=ort_web, cdn=cdn, progress=bar)
    for warning in built.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    height, width = built.model.shape[2:]
    where = f"from {built.ort_web}" if cdn else "bundled"
    console.print(
        f"wrote {site}/ ({len(built.files)} files, {built.size_bytes / 1e6:.1f} MB): {built.model.file} at "
        f"{height}x{width}, onnxruntime-web {built.ort_web_version} {where}",
        markup=False,
        soft_wrap=True,
    )


def _serve(site: Path, host: str, port: int, cert: Path | None, key: Path | None) -> None:
    from pocketgan.console import console
    from pocketgan.runtime.web import serve_site
    from pocketgan.runtime.web.server import access_notes

    server = serve_site(site, host, port, certfile=cert, keyfile=key)
    console.print(f"serving {site}/ at {server.url} (Ctrl-C stops)", markup=False, soft_wrap=True)
    for note in access_notes(server):
        console.print(note, markup=False, soft_wrap=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
