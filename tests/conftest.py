"""Shared fixtures: run the CLI in-process and capture what it prints."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

os.environ.setdefault("COLUMNS", "160")  # rich tables: don't wrap in captured output


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """``cli("profile", "resnet9:ngf=8")`` → :class:`CliResult` from ``pocketgan.cli.main``."""
    from pocketgan.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny networks run fastest on one thread, and each pytest-xdist worker gets its own core."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
