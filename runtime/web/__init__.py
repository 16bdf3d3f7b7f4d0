"""The browser demo: a static site that runs an exported ONNX generator with onnxruntime-web (torch-free).

``build_site(artifact, out)`` writes ``index.html`` + ``app.js`` + ``style.css``, the model and its sidecar,
``site.json`` and the pinned onnxruntime-web files (:mod:`pocketgan.runtime.web.ortweb`);
``serve_site(out)`` serves it with the cross-origin isolation headers WASM threads need
(:mod:`pocketgan.runtime.web.server`). ``pocketgan web`` is the command line of both.
"""

from __future__ import annotations

from pocketgan.runtime.web.ortweb import ORT_WEB_FILES, ORT_WEB_VERSION
from pocketgan.runtime.web.server import SiteServer, serve_site
from pocketgan.runtime.web.site import SITE_JSON, SiteBuild, build_site

__all__ = ["ORT_WEB_FILES", "ORT_WEB_VERSION", "SITE_JSON", "SiteBuild", "SiteServer", "build_site", "serve_site"]
