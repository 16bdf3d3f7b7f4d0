"""pocketgan: distill, prune, profile, export and benchmark GAN generators for edge devices.

Importing this package is cheap and torch-free; stages live in
``pocketgan.models``, ``pocketgan.distill``, ``pocketgan.export`` and ``pocketgan.runtime``.
"""

__version__ = "0.1.0"
