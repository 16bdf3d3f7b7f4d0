"""Test helper: an exported artifact's runner computes what the PyTorch model does."""

from __future__ import annotations

import numpy as np
import torch


def assert_runner_matches_pytorch(runner, loaded, size: int, *, seed: int, atol: float = 1e-4) -> None:
    """``runner.run(x)`` equals ``loaded.model(x)`` within ``atol`` on one seeded uniform [-1, 1] image."""
    x = np.random.default_rng(seed).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    with torch.inference_mode():
        expected = loaded.model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(runner.run(x), expected, atol=atol)
