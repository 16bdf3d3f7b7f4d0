"""`pocketgan demo ARTIFACT`: live translation of a video, a camera or a folder of images, or a latent walk.

The options are the runtime's (:mod:`pocketgan.runtime.demo.cli`, also ``python -m pocketgan.runtime.demo``
where only ``pocketgan[runtime]`` is installed); nothing heavy is imported until the verb runs.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `demo` verb to `app`."""
    from pocketgan.runtime.demo.cli import add_demo_command

    add_demo_command(app, name="demo")
