"""The ``demo`` command's options, defined once: ``pocketgan demo`` registers them (:func:`add_demo_command`), and
``python -m pocketgan.runtime.demo`` runs them where only ``pocketgan[runtime]`` is installed (no torch).

Everything heavy is imported when the command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from pocketgan.core.cli import run_app

DEFAULT_WALK_SECONDS = 10.0


def _opt(type_: Any, *names: str, **kwargs: Any) -> Any:
    """An optional (``None`` by default) typer option."""
    return Annotated[Optional[type_], typer.Option(*names, **kwargs)]  # noqa: UP045  (typer reads it at runtime)


def _flag(*names: str, help: str) -> Any:  # noqa: A002
    return Annotated[bool, typer.Option(*names, help=help)]


ArtifactArg = Annotated[
    str,
    typer.Argument(metavar="ARTIFACT", show_default=False,
                   help="the exported generator (an ONNX file or export directory, or any artifact a runtime "
                        "backend loads)"),
]  # fmt: skip
VideoOpt = _opt(Path, "--video", metavar="IN", help="translate every frame of a video file")
CameraOpt = _opt(int, "--camera", metavar="N", help="translate camera N live (frames inference cannot keep up "
                                                    "with are dropped and counted)")  # fmt: skip
ImagesOpt = _opt(Path, "--images", metavar="DIR", help="translate the images of a folder (or a dataset's inputs)")
WalkOpt = _flag("--latent-walk", help="a latent generator: a smooth walk through seeded latents")
OutOpt = _opt(Path, "--out", "-o", metavar="OUT.mp4", help="write the video here (mp4v; .mkv: lossless FFV1; "
                                                            "default: a window if there is a display, else demo.mp4)")
SizeOpt = _opt(str, "--size", metavar="H|HxW", help="the model's input size (default: the artifact's fixed size, "
                                                    "else the source's frame size)")  # fmt: skip
BackendOpt = _opt(str, "--backend", help="runtime backend (default: the artifact's own: .onnx ort, .xml openvino, …)")
ThreadsOpt = _opt(int, "--threads", min=1, help="intra-op threads of the backend")
MaxFramesOpt = _opt(int, "--max-frames", min=1, metavar="N", help="stop after reading N frames")
JsonOpt = _opt(Path, "--json", metavar="PATH", help="write the summary (per-frame samples too) as JSON")
SecondsOpt = _opt(float, "--seconds", min=0.0, help=f"length of the latent walk (default {DEFAULT_WALK_SECONDS:g})")
FpsOpt = _opt(float, "--fps", min=0.0, help="output frame rate (default: the video's or camera's; images 2; "
                                            "latent walk 30)")  # fmt: skip
ScaleOpt = Annotated[float, typer.Option("--scale", min=0.0, help="show frames at this multiple of the model's "
                                                                 "output size (e.g. 4 for a 64-px model)")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="the latent walk's first keyframe seed")]
SideOpt = _flag("--side-by-side", help="show the input left of the output")
RealtimeOpt = _flag("--realtime", help="play a file at its frame rate like a camera (dropping what inference "
                                       "cannot keep up with)")  # fmt: skip
OverlayOpt = _flag("--overlay/--no-overlay", help="draw the FPS and stage times on every frame")
PlacementOpt = _flag("--placement/--no-placement", help="record which provider ran each part of the graph")


def add_demo_command(app: typer.Typer, name: str | None = "demo") -> None:
    """Register the demo command on ``app`` (as ``name``; ``None``: the app's only command)."""

    @app.command(name=name)
    def demo(
        artifact: ArtifactArg,
        video: VideoOpt = None,
        camera: CameraOpt = None,
        images: ImagesOpt = None,
        latent_walk: WalkOpt = False,
        out: OutOpt = None,
        side_by_side: SideOpt = False,
        size: SizeOpt = None,
        backend: BackendOpt = None,
        threads: ThreadsOpt = None,
        max_frames: MaxFramesOpt = None,
        json_path: JsonOpt = None,
        seconds: SecondsOpt = None,
        fps: FpsOpt = None,
        seed: SeedOpt = 0,
        scale: ScaleOpt = 1.0,
        realtime: RealtimeOpt = False,
        overlay: OverlayOpt = True,
        placement: PlacementOpt = True,
    ) -> None:
        """Run ARTIFACT live on a video, a camera, images or a latent walk, with FPS and per-stage latency.

        Decoding, preprocessing, inference, postprocessing and encoding run as a pipeline of threads; FPS and
        stage times are drawn on every frame, and a summary table ends the run."""
        sources = {"video": video, "camera": camera, "images": images, "latent_walk": latent_walk,
                   "seconds": seconds, "fps": fps, "seed": seed, "realtime": realtime}  # fmt: skip
        settings = {"side_by_side": side_by_side, "overlay": overlay, "max_frames": max_frames, "fps": fps,
                    "seed": seed, "scale": scale, "placement": placement}  # fmt: skip
        run_command(artifact, out, json_path, backend, threads, size, sources=sources, settings=settings)


def run_command(
    artifact: str, out: Path | None, json_path: Path | None, backend: str | None, threads: int | None,
    size: str | None, *, sources: dict[str, Any], settings: dict[str, Any],
) -> None:  # fmt: skip
    """Load the artifact, open the source and the sink, run the demo with a progress bar, print the summary."""
    from pocketgan.core.errors import PocketganError
    from pocketgan.core.options import parse_size
    from pocketgan.runtime import demo, load
    from pocketgan.runtime.console import RichProgress, console, err_console
    from pocketgan.runtime.registry import pick_backend

    if json_path is not None and json_path.is_dir():
        raise PocketganError(f"--json {json_path} is a directory; give a file name")
    if sources["seconds"] is not None and not sources["latent_walk"]:
        raise PocketganError("--seconds is the length of a --latent-walk; use --max-frames for other sources")
    sources["seconds"] = sources["seconds"] or DEFAULT_WALK_SECONDS
    options = demo.DemoSettings(size=parse_size(size) if size is not None else None, **settings)
    runner = load(artifact, backend=backend or pick_backend(artifact), threads=threads)
    walk = runner if sources.pop("latent_walk") else None
    source = demo.open_source(latent_walk=walk, **sources)
    sink, note = demo.default_sink(out)
    if note:
        err_console.print(note, soft_wrap=True, markup=False)
    with RichProgress(err_console) as bar:
        summary = demo.run_demo(runner, source, sink, options, progress=bar)
    demo.print_summary(summary, console, err_console)
    if json_path is not None:
        console.print(f"wrote {demo.write_summary_json(summary, json_path)}", soft_wrap=True, markup=False)


app = typer.Typer(
    name="pocketgan-demo",
    help="Run an exported generator live on a video, a camera, images or a latent walk (no torch needed).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
add_demo_command(app, name=None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m pocketgan.runtime.demo``: user errors become one ``error:`` line, exit code 2."""
    return run_app(app, argv, "python -m pocketgan.runtime.demo")


if __name__ == "__main__":
    sys.exit(main())
