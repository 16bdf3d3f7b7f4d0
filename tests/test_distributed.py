"""Data-parallel training: 2 CPU processes under torchrun (gloo) end with identical weights and one model dir."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from pocketgan.distill.distributed import DistributedContext, resolve_device
from pocketgan.core.errors import PocketganError
from pocketgan.core.contract import ModelManifest

from ddp_worker import assert_identical_ranks, run_two_ranks


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Run the worker once on 2 processes; return its output folder."""
    return run_two_ranks(
        tmp_path_factory.mktemp("ddp"),
        imports="from test_trainer import PairDataset, make_kd, make_pix2pix\nfrom test_cyclegan import make_cyclegan",
        distillers='("pix2pix", make_pix2pix(seed=ctx.rank)), ("kd", make_kd(seed=ctx.rank)), '
        '("cyclegan", make_cyclegan(seed=ctx.rank))',
        dataset="PairDataset(n=8)",
        train_args="steps=4, batch_size=4, checkpoint_every=2, log_every=2, image_every=2",
        timeout=180,
    )


@pytest.mark.parametrize("method", ["pix2pix", "kd", "cyclegan"])
def test_ranks_end_with_identical_weights_and_one_model_dir(ddp_run, method):
    # parameters; pix2pix's BatchNorm statistics; cyclegan's G_B, D_A, D_B and history pools
    assert_identical_ranks(ddp_run, method)
    manifest = ModelManifest.load(ddp_run / method)
    assert manifest.provenance["world_size"] == 2 and manifest.provenance["steps"] == 4
    assert (ddp_run / method / "train" / "checkpoint.pt").exists()
    assert len(list((ddp_run / method / "train" / "tb").iterdir())) == 1  # only rank 0 logs


def test_ddp_matches_a_single_process_run_with_the_same_global_batch(ddp_run, tmp_path):
    """KD has only per-sample ops, so averaging 2 shards' gradients equals the full batch's gradient."""
    from test_trainer import PairDataset, make_kd, run

    single = make_kd(seed=0)  # one thread, as each worker (conftest's session fixture)
    run(single, tmp_path / "single", steps=4, batch_size=4, dataset=PairDataset(n=8))
    # Compare what the students compute: a conv bias right before InstanceNorm has a zero true gradient,
    # so Adam turns float noise into different (and irrelevant) values for it.
    ddp = make_kd(seed=0)
    ddp.load_state_dict(load_file(str(ddp_run / "kd-rank0.safetensors")))
    untrained = make_kd(seed=0)
    x = PairDataset(n=8).a
    with torch.no_grad():
        single_out, ddp_out, untrained_out = (d.student.eval()(x) for d in (single, ddp, untrained))
    assert torch.allclose(single_out, ddp_out, atol=1e-4), (single_out - ddp_out).abs().max()
    assert (untrained_out - ddp_out).abs().max() > 100 * (single_out - ddp_out).abs().max()


def test_single_process_context_and_device_resolution():
    context = DistributedContext.current("cpu")
    assert (context.rank, context.world_size, context.is_main, context.device.type) == (0, 1, True, "cpu")
    assert context.any(True) and not context.any(False) and context.shard(4) == (0, 4)
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(PocketganError, match="expected auto, cpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(PocketganError, match="CUDA is not available"):
            resolve_device("cuda")
