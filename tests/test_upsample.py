"""The generators' ``upsample=resize`` option (resize-conv, no checkerboard) and ``unet64``/``num_downs``."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.export import ExportOptions, export_model
from pocketgan.models import create_generator, load_model, parse_reference, save_model
from pocketgan.models.prune import ChannelPruner, rebuild_pruned
from pocketgan.models.upsample import ResizeConv2d

UNET = "unet64:ngf=4,upsample=resize"
RESNET = "resnet9:ngf=4,n_blocks=1,upsample=resize"


def make(ref: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    name, config = parse_reference(ref)
    return create_generator(name, **config).eval()


def run(model: nn.Module, size: int) -> torch.Tensor:
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.parametrize("ref, size", [(UNET, 64), (RESNET, 32)])
def test_resize_option_replaces_every_transposed_conv_and_keeps_shapes(ref, size):
    model = make(ref)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in model.modules())
    assert sum(isinstance(m, ResizeConv2d) for m in model.modules()) == (6 if ref == UNET else 2)
    assert run(model, size).shape == (2, 3, size, size)
    assert model.spec().config["upsample"] == "resize"


def test_defaults_keep_the_official_transposed_convs_and_state_dict_names():
    unet = make("unet128:ngf=4")
    deconvs = {name: m.weight.shape for name, m in unet.named_modules() if isinstance(m, nn.ConvTranspose2d)}
    assert deconvs["model.model.3"] == (8, 3, 4, 4)  # junyanz: outermost upconv, (in=2·ngf, out=3, 4, 4)
    assert "upsample" not in unet.spec().config
    resnet = make("resnet9:ngf=4,n_blocks=1")
    assert isinstance(resnet.model[11], nn.ConvTranspose2d) and resnet.model[11].weight.shape == (16, 8, 3, 3)
    assert make("unet128:ngf=4,num_downs=6").spec().config["num_downs"] == 6


def test_resize_conv_has_no_checkerboard_where_a_transposed_conv_does():
    torch.manual_seed(0)
    flat = torch.ones(1, 4, 8, 8)
    resize = ResizeConv2d(4, 2, bias=False)
    deconv = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, bias=False)
    for layer in (resize, deconv):
        nn.init.uniform_(layer.weight, 0.1, 1.0)
    with torch.no_grad():
        inner_resize, inner_deconv = resize(flat)[..., 2:-2, 2:-2], deconv(flat)[..., 2:-2, 2:-2]
    assert inner_resize.std(dim=(2, 3)).max() < 1e-6  # a flat input stays flat
    assert inner_deconv.std(dim=(2, 3)).min() > 0.05  # the stride-2 overlap pattern


@pytest.mark.parametrize("ref, size", [(UNET, 64), (RESNET, 32)])
def test_resize_option_prunes_rebuilds_and_reloads(tmp_path, ref, size):
    model = make(ref)
    raw = ChannelPruner(model).prune(0.5)
    rebuilt = rebuild_pruned(raw)
    assert torch.equal(run(raw, size), run(rebuilt, size))
    assert any(isinstance(m, ResizeConv2d) for m in rebuilt.modules())
    save_model(rebuilt, tmp_path / "pruned")
    reloaded = load_model(tmp_path / "pruned").model
    assert torch.equal(run(rebuilt, size), run(reloaded, size))
    assert sum(p.numel() for p in reloaded.parameters()) < sum(p.numel() for p in model.parameters())


def test_resize_option_exports_to_onnx_with_parity(tmp_path):
    torch.manual_seed(0)
    loaded = load_model(UNET)
    manifest = export_model(loaded, "onnx", tmp_path, ExportOptions(size=(64, 64)))
    assert manifest.parity.passed
    batch = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3)).numpy() * 2 - 1
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = loaded.model(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(session.run(None, {"input": batch})[0], expected, atol=1e-4)


def test_unknown_upsampling_is_a_one_line_error():
    with pytest.raises(PocketganError, match="upsample must be one of deconv, resize; got 'bilinear'"):
        make("unet64:ngf=4,upsample=bilinear")
    with pytest.raises(PocketganError, match="upsample must be one of"):
        make("resnet9:ngf=4,upsample=pixelshuffle")
