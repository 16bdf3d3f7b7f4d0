"""Every graph rewrite is proven equal in PyTorch and in onnxruntime (≤ 1e-5)."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from pocketgan.core.errors import PocketganError
from pocketgan.export.rewrites import (
    REWRITES,
    TARGET_REWRITES,
    DecomposedInstanceNorm2d,
    apply_rewrites,
    resolve_rewrites,
    rewrite_for_target,
    rewrites_for,
)
from pocketgan.export.trt_readiness import check_graph
from pocketgan.models import create_generator

TOL = 1e-5


def onnx_output(module: nn.Module, x: torch.Tensor, path) -> np.ndarray:
    """``module`` exported with the TorchScript exporter (opset 17) and run by onnxruntime on ``x``."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, x, str(path), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["output"])  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


def affine_norm() -> nn.InstanceNorm2d:
    """An affine InstanceNorm whose weight and bias are not the identity they start as."""
    norm = nn.InstanceNorm2d(5, affine=True, eps=1e-3)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    return norm


CASES = {
    "reflection-pad": (lambda: nn.ReflectionPad2d((3, 1, 2, 0)), (2, 3, 9, 7)),
    "conv-transpose-crop": (lambda: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), (2, 4, 5, 6)),
    "instance-norm-decomposed": (affine_norm, (2, 5, 7, 6)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_rewrite_is_equal_in_pytorch_and_onnxruntime(name, tmp_path):
    assert set(CASES) == set(REWRITES.names())  # every registered rewrite has a proof here
    make, shape = CASES[name]
    torch.manual_seed(0)
    original = nn.Sequential(make()).eval()
    rewritten, counts = apply_rewrites(original, [name])
    assert counts == {name: 1} and type(rewritten[0]) is not type(original[0])
    x = torch.randn(*shape)
    with torch.no_grad():
        expected = original(x)
        got = rewritten(x)
    assert got.shape == expected.shape and (got - expected).abs().max() <= TOL
    via_onnx = onnx_output(rewritten, x, tmp_path / "rewritten.onnx")
    assert np.abs(via_onnx - expected.numpy()).max() <= TOL
    assert np.abs(onnx_output(original, x, tmp_path / "original.onnx") - via_onnx).max() <= TOL


def test_a_pix2pix_generator_loses_its_reflect_pads_and_output_padding(tmp_path):
    torch.manual_seed(0)
    model = create_generator("resnet9", ngf=4).eval()
    pads = sum(type(m) is nn.ReflectionPad2d for m in model.modules())
    deconvs = sum(type(m) is nn.ConvTranspose2d for m in model.modules())
    rewritten, counts = apply_rewrites(model, ["reflection-pad", "conv-transpose-crop"])
    assert counts == {"reflection-pad": pads, "conv-transpose-crop": deconvs} and pads > 0 and deconvs > 0
    assert sum(type(m) is nn.ReflectionPad2d for m in model.modules()) == pads  # the original is untouched
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = model(x).numpy()
    got = onnx_output(rewritten, x, tmp_path / "g.onnx")
    assert np.abs(got - expected).max() <= TOL
    graph = onnx.load(str(tmp_path / "g.onnx"))
    modes = [a.s for n in graph.graph.node if n.op_type == "Pad" for a in n.attribute if a.name == "mode"]
    assert b"reflect" not in modes
    assert not check_graph(graph).of("fallback")  # no ConvTranspose output_padding left for TensorRT


def test_a_deconv_whose_output_padding_exceeds_its_padding_is_left_alone():
    model = nn.Sequential(nn.ConvTranspose2d(2, 2, 3, stride=3, padding=0, output_padding=1))
    _, counts = apply_rewrites(model)
    assert counts == {}


def test_rewrite_selection():
    assert resolve_rewrites("all") == REWRITES.names() and resolve_rewrites("none") == []
    assert resolve_rewrites("reflection-pad") == ["reflection-pad"]
    with pytest.raises(PocketganError, match="did you mean reflection-pad"):
        resolve_rewrites("reflection-pads")


@pytest.mark.parametrize("shape", [(3, 4, 6, 5), (4, 6, 5)], ids=["NCHW", "CHW"])
def test_a_plain_instance_norm_is_decomposed_equal_and_its_onnx_graph_has_no_instance_norm(shape, tmp_path):
    torch.manual_seed(1)
    original = nn.Sequential(nn.InstanceNorm2d(4, eps=1e-5)).eval()  # affine=False, as the pix2pix ResNets
    rewritten, counts = apply_rewrites(original, ["instance-norm-decomposed"])
    assert counts == {"instance-norm-decomposed": 1} and isinstance(rewritten[0], DecomposedInstanceNorm2d)
    x = torch.randn(*shape) * 3 + 2  # an offset and a spread the normalization must remove
    with torch.no_grad():
        assert (rewritten(x) - original(x)).abs().max() <= TOL
    if len(shape) == 4:
        got = onnx_output(rewritten, x, tmp_path / "norm.onnx")
        ops = {n.op_type for n in onnx.load(str(tmp_path / "norm.onnx")).graph.node}
        assert np.abs(got - torch.nn.functional.instance_norm(x).numpy()).max() <= TOL
        assert "InstanceNormalization" not in ops and "ReduceMean" in ops


def test_an_instance_norm_with_running_statistics_is_left_alone():
    model = nn.Sequential(nn.InstanceNorm2d(3, track_running_stats=True))
    assert apply_rewrites(model, ["instance-norm-decomposed"])[1] == {}


FAMILIES = {"resnet9": {"ngf": 4}, "mobile-resnet": {"ngf": 4}, "unet64": {"ngf": 8, "norm": "instance"}}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_rewrite_on_a_real_generator_is_equal_in_pytorch_and_onnxruntime(family, tmp_path):
    torch.manual_seed(0)
    model = create_generator(family, **FAMILIES[family]).eval()
    norms = sum(type(m) is nn.InstanceNorm2d for m in model.modules())
    rewritten, counts = apply_rewrites(model, resolve_rewrites("all"))
    assert counts["instance-norm-decomposed"] == norms > 0
    assert not any(type(m) is nn.InstanceNorm2d for m in rewritten.modules())
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = model(x)
        assert (rewritten(x) - expected).abs().max() <= TOL
    assert np.abs(onnx_output(rewritten, x, tmp_path / "all.onnx") - expected.numpy()).max() <= TOL


def test_each_target_has_default_rewrites_and_an_option_overrides_them():
    assert rewrites_for("executorch") == ["instance-norm-decomposed", "reflection-pad"] == rewrites_for("executorch", "default")
    assert rewrites_for("coreml") == ["conv-transpose-crop"] and "conv-transpose-crop" in rewrites_for("tflite")
    assert rewrites_for("ncnn") == [] == rewrites_for("onnx") == rewrites_for("executorch", "none")
    assert rewrites_for("ncnn", "all") == REWRITES.names()
    assert rewrites_for("ncnn", "reflection-pad,instance-norm-decomposed") == ["reflection-pad", "instance-norm-decomposed"]
    assert all(name in REWRITES.names() for names in TARGET_REWRITES.values() for name in names)
    with pytest.raises(PocketganError, match="did you mean instance-norm-decomposed"):
        rewrites_for("ncnn", "instance-norm-decompose")


def test_rewriting_for_a_target_counts_what_ran():
    model = create_generator("mobile-resnet", ngf=4)
    _, counts = rewrite_for_target(model, "executorch")
    assert counts == {"instance-norm-decomposed": sum(type(m) is nn.InstanceNorm2d for m in model.modules()),
                      "reflection-pad": sum(type(m) is nn.ReflectionPad2d for m in model.modules())}
    assert rewrite_for_target(model, "ncnn")[1] == {}
