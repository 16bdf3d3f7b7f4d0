"""Data-parallel test helper: train distillers on 2 CPU ranks under torchrun (gloo) and compare the ranks' weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

TESTS = Path(__file__).parent

WORKER = """
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, {tests!r})
{imports}

from pocketgan.distill.distributed import distributed_session
from pocketgan.distill.loop import train

torch.set_num_threads(1)
out = Path(sys.argv[1])
with distributed_session("cpu") as ctx:
    assert ctx.world_size == 2, ctx
    # Each rank builds different initial weights: the trainer must broadcast rank 0's.
    for name, distiller in ({distillers},):
        train(distiller, {dataset}, out_dir=out / name, seed=0, {train_args})
        state = {{k: v.detach().contiguous() for k, v in distiller.state_dict().items()}}
        save_file(state, str(out / f"{{name}}-rank{{ctx.rank}}.safetensors"))
"""


def run_two_ranks(out: Path, *, imports: str, distillers: str, dataset: str, train_args: str, timeout: int) -> Path:
    """Runs :data:`WORKER` on 2 processes; ``distillers`` is Python source of ``(name, distiller)`` pairs
    (``ctx.rank`` in scope), ``imports`` the lines importing what it and ``dataset`` use. Returns ``out``."""
    script = out / "worker.py"
    source = WORKER.format(tests=str(TESTS), imports=imports, distillers=distillers, dataset=dataset,
                           train_args=train_args)  # fmt: skip
    script.write_text(source)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def assert_identical_ranks(out: Path, name: str) -> None:
    """Rank 0's and rank 1's saved state of ``name`` have the same keys and equal tensors."""
    rank0, rank1 = (load_file(str(out / f"{name}-rank{r}.safetensors")) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), (name, key)
