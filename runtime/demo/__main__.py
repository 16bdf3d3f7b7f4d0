"""``python -m pocketgan.runtime.demo ARTIFACT ...``: the demo where only ``pocketgan[runtime]`` is installed."""

import sys

from pocketgan.runtime.demo.cli import main

sys.exit(main())
