"""`pocketgan web`: the static site, onnxruntime-web from the pinned npm package, the server, and the page
itself in a real headless Chromium (Debian's ``chromium`` driven by Playwright; installed by ``.ci/install-browser``).

The browser test feeds a fake camera from a generated ``.y4m`` video, and compares the page's output for one
image with the Python runtime's (``runner.translate``, onnxruntime) on the same input: after uint8 rounding
at most 1 level apart (float32 kernels of onnxruntime-web's WASM vs native onnxruntime differ by ~1e-6 before
rounding; the page's pre/post-processing is the runtime's float32 math and rounds half to even like numpy).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import numpy as np
import pytest

from pocketgan.core.errors import PocketganError
from pocketgan.runtime.web import ORT_WEB_FILES, ORT_WEB_VERSION, build_site, ortweb, serve_site
from pocketgan.runtime.web.browser import headless_page, run_camera, write_y4m

WEB_SIZE = 64
CHROMIUM = shutil.which("chromium")
#: The page's output vs ``runner.translate``, in uint8 levels (see the module docstring), and the share of
#: values allowed to differ at all.
MAX_LEVELS = 1
MAX_DIFFERING = 0.01


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A real export (``pocketgan.export``: sidecar with parity, metadata embedded) of mobile-resnet:ngf=4 at 64 px."""
    import torch

    from pocketgan.export import ExportOptions, export_model
    from pocketgan.models import load_model

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("web-export")
    export_model(load_model("mobile-resnet:ngf=4"), "onnx", out, ExportOptions(size=(WEB_SIZE, WEB_SIZE)))
    return out / "model.onnx"


@pytest.fixture(scope="module")
def ort_web_files() -> Path:
    """The pinned onnxruntime-web files in the cache (fetched with npm the first time, offline afterwards)."""
    if shutil.which("npm") is None and not (ortweb.cache_root() / ORT_WEB_VERSION).is_dir():
        pytest.skip("npm is missing and onnxruntime-web is not cached (.ci/install-browser installs npm)")
    return ortweb.cached_ort_web()


@pytest.fixture(scope="module")
def site(exported, ort_web_files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("web") / "site"
    build_site(exported, out)
    return out


def no_npm_env(tmp_path: Path) -> dict[str, str]:
    """The environment with an empty cache and a PATH holding only this Python (no npm, no node)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    return {**os.environ, "PATH": str(bin_dir), "POCKETGAN_CACHE": str(tmp_path / "empty-cache")}


def run_cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``pocketgan ARGS`` in a subprocess (PATH may hide npm), text output."""
    command = [sys.executable, "-m", "pocketgan", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


# ---------------------------------------------------------------------------------------- the site


def test_site_holds_the_model_its_card_and_bundled_ort_web(site, exported, ort_web_files):
    files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    assert files == sorted(
        ["app.js", "index.html", "style.css", "site.json", "model.onnx", "model.onnx.json"]
        + [f"ort/{name}" for name in ORT_WEB_FILES]
    )
    assert (site / "model.onnx").read_bytes() == exported.read_bytes()
    for name in ORT_WEB_FILES:
        assert (site / "ort" / name).read_bytes() == (ort_web_files / name).read_bytes()
    config = json.loads((site / "site.json").read_text())
    sidecar = json.loads((site / "model.onnx.json").read_text())
    model = config["model"]
    assert model["shape"] == [1, 3, WEB_SIZE, WEB_SIZE] and (model["input"], model["output"]) == ("input", "output")
    assert model["io"]["scale"] == pytest.approx(1 / 127.5) and model["io"]["offset"] == -1.0
    assert model["card"]["parity"] == sidecar["parity"] and model["card"]["sha256"] == sidecar["sha256"]
    assert model["card"]["source"] == "mobile-resnet:ngf=4" and model["card"]["arch"] == "mobile-resnet"
    assert config["ort_web"] == {"package": "onnxruntime-web", "version": ORT_WEB_VERSION, "base": "ort/",
                                 "module": "ort.min.mjs"}  # fmt: skip


def test_card_counts_are_the_models(site, tiny_student):
    """Params as torch counts them; MACs as the export's embedded fvcore profile says (read with onnx)."""
    import onnx

    card = json.loads((site / "site.json").read_text())["model"]["card"]
    assert card["params"] == sum(p.numel() for p in tiny_student.model.parameters())
    props = {p.key: p.value for p in onnx.load(str(site / "model.onnx")).metadata_props}
    assert card["macs"] == json.loads(props["pocketgan.profile"])["macs"] > 1_000_000


def test_no_cdn_unless_asked(site, exported, tmp_path):
    cdn_hosts = re.compile(r"cdn\.jsdelivr\.net|unpkg\.com|cdnjs")
    texts = [p.read_text(errors="ignore") for p in site.rglob("*") if p.is_file() and p.suffix != ".wasm"]
    assert len(texts) == 8 and not any(cdn_hosts.search(text) for text in texts)
    result = run_cli("web", exported, "--cdn", "-o", tmp_path / "cdn", env=no_npm_env(tmp_path))  # no npm needed
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "cdn" / "site.json").read_text())
    assert config["ort_web"]["base"] == f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
    assert not (tmp_path / "cdn" / "ort").exists()


def test_without_npm_one_line_names_ort_web(exported, tmp_path):
    result = run_cli("web", exported, "-o", tmp_path / "site", env=no_npm_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: npm not found")
    assert "--ort-web DIR" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "site").exists()


def test_ort_web_dir_replaces_npm(exported, ort_web_files, tmp_path):
    package = tmp_path / "node_modules" / "onnxruntime-web"
    (package / "dist").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "onnxruntime-web", "version": ORT_WEB_VERSION}))
    for name in ORT_WEB_FILES:
        shutil.copyfile(ort_web_files / name, package / "dist" / name)
    result = run_cli("web", exported, "--ort-web", package, "-o", tmp_path / "site", env=no_npm_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "onnxruntime-web 1.30.0 bundled" in result.stdout and not result.stderr
    assert (tmp_path / "site" / "ort" / "ort.min.mjs").read_bytes() == (ort_web_files / "ort.min.mjs").read_bytes()

    (package / "dist" / ORT_WEB_FILES[2]).unlink()
    with pytest.raises(PocketganError, match=f"missing {re.escape(ORT_WEB_FILES[2])}"):
        build_site(exported, tmp_path / "site2", ort_web=package)
    assert not (tmp_path / "site2").exists()


def test_cached_tarball_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("POCKETGAN_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm: the bad tarball must not be silently re-fetched
    tarball = ortweb.cache_root() / ortweb.tarball_name()
    tarball.parent.mkdir(parents=True)
    tarball.write_bytes(b"not the package")
    with pytest.raises(PocketganError, match="npm not found"):
        ortweb.cached_ort_web()
    assert ortweb.integrity(tarball) != ortweb.ORT_WEB_INTEGRITY


def test_bad_inputs_are_one_line(exported, artifacts, tmp_path, cli):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    cases = [
        (("web", exported), "give -o/--out DIR"),
        (("web", exported, "-o", tmp_path / "busy"), "not empty and not a pocketgan web site"),
        (("web", tmp_path / "nothing.onnx", "-o", tmp_path / "x"), "no such ONNX file"),
        (("web", artifacts.dynamic, "--size", "30", "-o", tmp_path / "x"), "positive multiples of 4"),
        (("web", exported, "--cdn", "--ort-web", tmp_path, "-o", tmp_path / "x"), "exclude each other"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.code == 2 and message in result.err and result.err.count("\n") == 1, (args, result.err)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine" and not (tmp_path / "x").exists()


def test_latent_generator_is_one_line(tmp_path):
    """A 2-D ``[batch, z_dim]`` input is a latent generator (StyleGAN2): the page translates images only."""
    import torch

    class Latent(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.tanh(z[:, :3, None, None].expand(-1, 3, 8, 8))

    path = tmp_path / "latent.onnx"
    torch.onnx.export(Latent(), torch.zeros(1, 16), str(path), dynamo=False, input_names=["z"], output_names=["image"])
    with pytest.raises(PocketganError, match="takes a latent; the browser demo translates images"):
        build_site(path, tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_dynamic_model_runs_at_size(artifacts, ort_web_files, tmp_path):
    built = build_site(artifacts.dynamic, tmp_path / "site", size=(48, 40))
    assert built.model.shape == [1, 3, 48, 40]
    assert built.model.card.parity is None and built.model.card.source == "dynamic.onnx"  # the tests' bare sidecar


# ---------------------------------------------------------------------------------------- the server


def fetch(url: str, context: ssl.SSLContext | None = None) -> tuple[int, Message, bytes]:
    """Status, headers (case-insensitive) and body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, b""


def test_server_isolates_and_types(site):
    server = serve_site(site, "127.0.0.1", 0)
    server.start()
    try:
        status, headers, body = fetch(server.url)
        assert status == 200 and b'src="app.js"' in body
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert fetch(server.url + "ort/" + ORT_WEB_FILES[2])[1]["Content-Type"] == "application/wasm"
        assert fetch(server.url + "ort/ort.min.mjs")[1]["Content-Type"] == "text/javascript"
        assert fetch(server.url + "missing.js")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_serve_https(site, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is missing (needed to make a throwaway certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)  # fmt: skip
    server = serve_site(site, "127.0.0.1", 0, certfile=cert, keyfile=key)
    server.start()
    try:
        assert server.url.startswith("https://")
        unverified = ssl._create_unverified_context()  # the throwaway certificate is self-signed
        assert fetch(server.url, unverified)[0] == 200
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(PocketganError, match="cannot load the TLS certificate"):
        serve_site(site, "127.0.0.1", 0, certfile=tmp_path / "none.pem")


def test_cli_serves_a_built_site(site):
    command = [sys.executable, "-m", "pocketgan", "web", str(site), "--serve", "--port", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()  # "serving SITE/ at http://127.0.0.1:PORT/ (Ctrl-C stops)"
        url = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        assert url, line + process.stderr.read()
        assert fetch(url.group(1) + "site.json")[2] == (site / "site.json").read_bytes()
        assert "adb reverse" in process.stdout.readline()  # the loopback host: only the phone notes
    finally:
        process.terminate()
        process.wait(timeout=10)


# ---------------------------------------------------------------------------------------- the page


@pytest.fixture(scope="module")
def page(site, tmp_path_factory):
    """The site served on a free loopback port, open in headless Chromium with a fake camera playing a generated
    video (``page.pocketgan_requests``: every URL it fetched)."""
    if CHROMIUM is None:
        pytest.skip("chromium is missing: .ci/install-browser installs Debian's chromium (apt-get install chromium)")
    video = write_y4m(tmp_path_factory.mktemp("camera") / "camera.y4m")
    with headless_page(site, camera=video, chromium=CHROMIUM) as page:
        page.evaluate("window.pocketgan.ready")  # the session exists: the upload and camera handlers run the model
        yield page


def test_page_runs_the_camera_on_wasm(page):
    assert page.evaluate("window.pocketgan.ready") == "wasm"  # --disable-gpu: no WebGPU adapter, so wasm
    stats = run_camera(page, frames=20)
    assert stats["frames"] >= 20
    assert stats["error"] is None and stats["isolated"] is True  # COOP/COEP: SharedArrayBuffer, WASM threads
    assert stats["backend"] == "wasm" and stats["inference"]["p50"] > 0 and stats["fps"] > 0
    page.wait_for_function("document.getElementById('fps').textContent !== '–'", timeout=5_000)
    assert float(page.inner_text("#fps")) > 0
    assert page.inner_text("#backend-ran").startswith("wasm (SIMD")
    assert "mobile-resnet:ngf=4" in page.inner_text("#card-table")
    page.evaluate("window.pocketgan.stop()")


def test_page_output_equals_the_python_runtime(page, site):
    from pocketgan.imaging import encode_png
    from pocketgan.runtime import load

    image = np.random.default_rng(3).integers(0, 256, (WEB_SIZE, WEB_SIZE, 3), dtype=np.uint8)
    (site / "probe.png").write_bytes(encode_png(image))
    out = page.evaluate("window.pocketgan.runImage('probe.png')")
    web = np.asarray(out["pixels"], dtype=np.uint8).reshape(out["height"], out["width"], 3)
    expected = load(site / "model.onnx", threads=1).translate(image)
    difference = np.abs(web.astype(np.int16) - expected.astype(np.int16))
    assert difference.max() <= MAX_LEVELS and (difference > 0).mean() < MAX_DIFFERING
    assert web.std() > 5  # a real picture, not a blank canvas


def test_page_translates_an_uploaded_image(page, tmp_path):
    from pocketgan.imaging import encode_png

    page.evaluate("window.pocketgan.stop()")
    before = page.evaluate("window.pocketgan.stats().frames")
    upload = tmp_path / "upload.png"
    upload.write_bytes(encode_png(np.full((48, 80, 3), 200, dtype=np.uint8)))
    page.set_input_files("#upload", str(upload))
    page.wait_for_function(f"window.pocketgan.stats().frames > {before}", timeout=10_000)
    assert page.inner_text("#status") == "image upload.png"


def test_page_plays_an_uploaded_video(page, tmp_path):
    import cv2

    video = tmp_path / "clip.webm"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"VP80"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write VP8 WebM (the video format Chromium plays)")
    for i in range(20):
        writer.write(np.full((48, 64, 3), 10 * i, dtype=np.uint8))
    writer.release()
    before = page.evaluate("window.pocketgan.stats().frames")
    page.set_input_files("#upload", str(video))
    page.wait_for_function(f"window.pocketgan.stats().frames >= {before + 5}", timeout=20_000)
    assert page.inner_text("#status") == "video clip.webm"
    page.evaluate("window.pocketgan.stop()")


def test_page_says_when_ort_web_is_missing(page, site, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    (broken / "ort" / "ort.min.mjs").unlink()
    server = serve_site(broken, "127.0.0.1", 0)
    server.start()
    other = page.context.browser.new_page()  # the same browser (Playwright's sync API does not nest)
    try:
        other.goto(server.url)
        other.wait_for_function("document.getElementById('status').classList.contains('error')", timeout=30_000)
        assert other.inner_text("#status").startswith("could not load site.json or onnxruntime-web")
        assert other.evaluate("window.pocketgan.ready.then(() => 'ready', () => 'rejected')") == "rejected"
    finally:
        other.close()
        server.shutdown()
        server.server_close()


def test_page_loads_nothing_from_outside(page):
    fetched = [url for url in page.pocketgan_requests if not url.startswith(("data:", "blob:"))]
    local = [url for url in fetched if url.startswith(page.pocketgan_url)]
    assert local and local == fetched
    assert any(url.endswith(ORT_WEB_FILES[2]) for url in local)
