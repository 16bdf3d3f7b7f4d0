"""Importing StyleGAN2 checkpoints: rosinality ``.pt`` (equal to an independent rosinality forward),
NVlabs ``.pkl`` through the restricted unpickler (persistent objects recorded, never executed),
refusal of pickled code, and one-line errors for the wrong architecture or a wrong-shaped tensor."""

from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from rosinality_reference import (
    discriminator_forward,
    generator_forward,
    make_kernel,
    random_discriminator_state,
    random_generator_state,
)

from pocketgan.core.errors import PocketganError
from pocketgan.models import create_generator, load_model, save_model
from pocketgan.models.safe_pickle import UnsafePickleError, restricted_load
from pocketgan.models.stylegan2.checkpoints import load_stylegan2_discriminator, load_stylegan2_generator

STYLE, N_MLP = 16, 2
#: Channels per resolution; 16 px breaks the min(base // r, max) rule, so per-layer widths are inferred.
IRREGULAR = {4: 16, 8: 16, 16: 12, 32: 8}
REGULAR = {4: 16, 8: 16, 16: 16, 32: 8}  # = channel_base 256, channel_max 16


def write_rosinality(path: Path, channels: dict[int, int], **extra) -> dict:
    g_ema = random_generator_state(channels, STYLE, N_MLP, seed=0)
    ckpt = {
        "g": random_generator_state(channels, STYLE, N_MLP, seed=5),
        "g_ema": g_ema,
        "d": random_discriminator_state(channels),
        "args": argparse.Namespace(size=max(channels), n_mlp=N_MLP, channel_multiplier=1),
        **extra,
    }
    torch.save(ckpt, path)
    return ckpt


@pytest.fixture(scope="module")
def rosinality_ckpt(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("ros") / "550000.pt"
    return path, write_rosinality(path, IRREGULAR)


def test_rosinality_g_ema_equals_reference_forward(rosinality_ckpt):
    path, ckpt = rosinality_ckpt
    model = load_stylegan2_generator(path)
    assert model.config["size"] == 32 and model.z_dim == model.w_dim == STYLE and model.config["n_mlp"] == N_MLP
    assert model.spec().widths["synthesis.b16.conv1.conv"] == 12
    z = torch.randn(3, STYLE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(z, noise_mode="const")
        theirs = generator_forward(ckpt["g_ema"], z, N_MLP)
    assert ours.shape == (3, 3, 32, 32)
    assert theirs.abs().max() > 0.1  # a real image, not a degenerate all-zero comparison
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    # the stored noise matters: random noise gives another image
    assert (model(z, noise_mode="random") - theirs).abs().max() > 1e-3


def test_rosinality_truncation_uses_latent_avg_and_g_is_selectable(tmp_path):
    path = tmp_path / "ckpt.pt"
    latent_avg = torch.randn(STYLE)
    ckpt = write_rosinality(path, REGULAR, latent_avg=latent_avg)
    model = load_model(path, arch="stylegan2").model
    assert model.spec().widths is None  # the widths follow channel_base 256 / channel_max 16
    assert (model.config["channel_base"], model.config["channel_max"]) == (256, 16)
    torch.testing.assert_close(model.w_avg, latent_avg)
    z = torch.randn(2, STYLE)
    with torch.no_grad():
        ours = model(z, truncation=0.6)
        theirs = generator_forward(ckpt["g_ema"], z, N_MLP, truncation=0.6, truncation_latent=latent_avg)
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
        g = load_model(path, arch="stylegan2:net=g").model
        torch.testing.assert_close(g(z), generator_forward(ckpt["g"], z, N_MLP), atol=1e-4, rtol=0)


def test_rosinality_discriminator_equals_reference(rosinality_ckpt):
    path, ckpt = rosinality_ckpt
    d = load_stylegan2_discriminator(path)
    img = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(d(img), discriminator_forward(ckpt["d"], img), atol=1e-4, rtol=1e-4)


def test_imported_model_round_trips_through_a_model_directory(rosinality_ckpt, tmp_path):
    path, _ = rosinality_ckpt
    model = load_stylegan2_generator(path)
    save_model(model, tmp_path / "teacher")
    again = load_model(tmp_path / "teacher").model
    z = torch.randn(2, STYLE)
    with torch.no_grad():
        torch.testing.assert_close(again(z), model(z), atol=0, rtol=0)
    torch.testing.assert_close(again.w_avg, model.w_avg)


def test_without_latent_avg_w_avg_is_the_mean_of_mapped_latents(rosinality_ckpt):
    path, _ = rosinality_ckpt
    model = load_stylegan2_generator(path)
    with torch.no_grad():
        sample_mean = model.mapping(torch.randn(8192, STYLE)).mean(0)
    spread = model.mapping(torch.randn(64, STYLE)).std(0).mean()
    assert (model.w_avg - sample_mean).abs().mean() < 0.1 * spread


# ------------------------------------------------------------------------------------------ NVlabs


class _NVlabsNet:
    """Pickles like an NVlabs ``persistence`` object: ``_reconstruct_persistent_obj(meta)`` with the
    module source and the nn.Module ``__dict__``-style state (``_parameters``, ``_buffers``, ``_modules``)."""

    SOURCE = ""  # set per test: code that must never run

    def __init__(self, class_name: str, params=None, buffers=None, modules=None, **attrs):
        self.class_name = class_name
        self.state = {
            "training": False,
            "_parameters": collections.OrderedDict(
                (k, torch.nn.Parameter(v, requires_grad=False)) for k, v in (params or {}).items()
            ),
            "_buffers": collections.OrderedDict(buffers or {}),
            "_non_persistent_buffers_set": set(),
            "_modules": collections.OrderedDict(modules or {}),
            "_init_args": (),
            **attrs,
        }

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src=self.SOURCE, class_name=self.class_name, state=self.state)
        return (_fake_persistence().reconstruct, (meta,))


def _fake_persistence():
    """The NVlabs-named stand-ins installed by the ``nvlabs_names`` fixture."""
    return types.SimpleNamespace(
        reconstruct=sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj,
        EasyDict=sys.modules["dnnlib.util"].EasyDict,
    )


@pytest.fixture
def nvlabs_names(monkeypatch):
    """Modules named like NVlabs' (torch_utils.persistence, dnnlib.util) so pickle writes their names."""
    pkg, mod = types.ModuleType("torch_utils"), types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # never called: loading must not reach NVlabs code
        raise AssertionError("the NVlabs reconstruct function ran")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    pkg.persistence = mod
    dnnlib, util = types.ModuleType("dnnlib"), types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    dnnlib.util = util
    modules = {"torch_utils": pkg, "torch_utils.persistence": mod, "dnnlib": dnnlib, "dnnlib.util": util}
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


def _fc(weight, bias):
    return _NVlabsNet("FullyConnectedLayer", {"weight": weight, "bias": bias}, activation="lrelu")


def _nvlabs_layer(ros: dict, p: str, noise: torch.Tensor):
    """A SynthesisLayer from a rosinality styled conv (weights (out, in, k, k), noise (r, r))."""
    return _NVlabsNet(
        "SynthesisLayer",
        {"weight": ros[f"{p}.conv.weight"][0], "noise_strength": ros[f"{p}.noise.weight"][0],
         "bias": ros[f"{p}.activate.bias"]},
        {"resample_filter": make_kernel([1, 3, 3, 1]), "noise_const": noise[0, 0]},
        {"affine": _fc(ros[f"{p}.conv.modulation.weight"], ros[f"{p}.conv.modulation.bias"])},
    )  # fmt: skip


def _nvlabs_torgb(ros: dict, p: str):
    return _NVlabsNet(
        "ToRGBLayer",
        {"weight": ros[f"{p}.conv.weight"][0], "bias": ros[f"{p}.bias"].reshape(-1)},
        modules={"affine": _fc(ros[f"{p}.conv.modulation.weight"], ros[f"{p}.conv.modulation.bias"])},
    )


def nvlabs_generator(ros: dict, w_avg: torch.Tensor) -> _NVlabsNet:
    """The NVlabs ``Generator`` holding the same weights as a rosinality state dict (as their converters map them)."""
    easy = _fake_persistence().EasyDict
    blocks = {"b4": _NVlabsNet(
        "SynthesisBlock", {"const": ros["input.input"][0]}, {"resample_filter": make_kernel([1, 3, 3, 1])},
        {"conv1": _nvlabs_layer(ros, "conv1", ros["noises.noise_0"]), "torgb": _nvlabs_torgb(ros, "to_rgb1")},
    )}  # fmt: skip
    j = 0
    while f"to_rgbs.{j}.conv.weight" in ros:
        layers = {
            "conv0": _nvlabs_layer(ros, f"convs.{2 * j}", ros[f"noises.noise_{2 * j + 1}"]),
            "conv1": _nvlabs_layer(ros, f"convs.{2 * j + 1}", ros[f"noises.noise_{2 * j + 2}"]),
            "torgb": _nvlabs_torgb(ros, f"to_rgbs.{j}"),
        }
        blocks[f"b{2 ** (j + 3)}"] = _NVlabsNet(
            "SynthesisBlock", buffers={"resample_filter": make_kernel([1, 3, 3, 1])}, modules=layers
        )
        j += 1
    fcs = {f"fc{i}": _fc(ros[f"style.{i + 1}.weight"], ros[f"style.{i + 1}.bias"]) for i in range(N_MLP)}
    kwargs = easy(
        z_dim=STYLE, c_dim=0, w_dim=STYLE, img_resolution=32, img_channels=3,
        mapping_kwargs=easy(num_layers=N_MLP), synthesis_kwargs=easy(channel_base=256, conv_clamp=None),
    )  # fmt: skip
    return _NVlabsNet(
        "Generator",
        modules={
            "synthesis": _NVlabsNet("SynthesisNetwork", modules=blocks, w_dim=STYLE, img_resolution=32),
            "mapping": _NVlabsNet("MappingNetwork", buffers={"w_avg": w_avg}, modules=fcs, num_ws=8),
        },
        z_dim=STYLE, _init_kwargs=kwargs,
    )  # fmt: skip


def _conv_layer(weight, bias=None):
    params = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    return _NVlabsNet("Conv2dLayer", params, {"resample_filter": make_kernel([1, 3, 3, 1])})


def nvlabs_discriminator(ros: dict, mbstd_group: int) -> _NVlabsNet:
    """The NVlabs ``Discriminator`` (resnet) holding a rosinality discriminator's weights."""
    size = 4 * 2 ** sum(1 for k in ros if k.endswith("conv1.0.weight"))
    blocks = {}
    for k, res in enumerate(2**i for i in range(size.bit_length() - 1, 2, -1)):
        p = f"convs.{k + 1}"
        layers = {"conv0": _conv_layer(ros[f"{p}.conv1.0.weight"], ros[f"{p}.conv1.1.bias"]),
                  "conv1": _conv_layer(ros[f"{p}.conv2.1.weight"], ros[f"{p}.conv2.2.bias"]),
                  "skip": _conv_layer(ros[f"{p}.skip.1.weight"])}  # fmt: skip
        if res == size:
            layers = {"fromrgb": _conv_layer(ros["convs.0.0.weight"], ros["convs.0.1.bias"]), **layers}
        blocks[f"b{res}"] = _NVlabsNet("DiscriminatorBlock", buffers={"resample_filter": make_kernel([1, 3, 3, 1])},
                                       modules=layers)  # fmt: skip
    blocks["b4"] = _NVlabsNet("DiscriminatorEpilogue", modules={
        "mbstd": _NVlabsNet("MinibatchStdLayer", group_size=mbstd_group),
        "conv": _conv_layer(ros["final_conv.0.weight"], ros["final_conv.1.bias"]),
        "fc": _fc(ros["final_linear.0.weight"], ros["final_linear.0.bias"]),
        "out": _fc(ros["final_linear.1.weight"], ros["final_linear.1.bias"]),
    })  # fmt: skip
    easy = _fake_persistence().EasyDict
    kwargs = easy(c_dim=0, img_resolution=size, epilogue_kwargs=easy(mbstd_group_size=mbstd_group))
    return _NVlabsNet("Discriminator", modules=blocks, _init_kwargs=kwargs)


def test_nvlabs_pickle_imports_without_running_its_code(tmp_path, nvlabs_names):
    ros = random_generator_state(REGULAR, STYLE, N_MLP, seed=3)
    marker = tmp_path / "ran.txt"
    _NVlabsNet.SOURCE = f"open({str(marker)!r}, 'w').write('module source executed')\n"
    w_avg = torch.randn(STYLE)
    net = nvlabs_generator(ros, w_avg)
    ros_d = random_discriminator_state(REGULAR)
    data = {"G": net, "G_ema": net, "D": nvlabs_discriminator(ros_d, mbstd_group=2), "augment_pipe": None,
            "training_set_kwargs": _fake_persistence().EasyDict(path="ffhq.zip", resolution=32)}  # fmt: skip
    path = tmp_path / "network-snapshot-000100.pkl"
    path.write_bytes(pickle.dumps(data, protocol=3))  # protocol 3 as NVlabs' Python 3.7 wrote them
    model = load_model(path, arch="stylegan2").model
    assert not marker.exists()
    torch.testing.assert_close(model.w_avg, w_avg)
    z = torch.randn(2, STYLE)
    with torch.no_grad():
        torch.testing.assert_close(model(z), generator_forward(ros, z, N_MLP), atol=1e-4, rtol=0)
        expected = generator_forward(ros, z, N_MLP, truncation=0.5, truncation_latent=w_avg)
        torch.testing.assert_close(model(z, truncation=0.5), expected, atol=1e-4, rtol=0)
        d = load_stylegan2_discriminator(path)
        assert d.config["mbstd_group"] == 2  # from the pickled constructor arguments
        img = torch.randn(4, 3, 32, 32)
        torch.testing.assert_close(d(img), discriminator_forward(ros_d, img, stddev_group=2), atol=1e-4, rtol=1e-4)
    assert not marker.exists()


def test_restricted_unpickler_rebuilds_tensors_arrays_and_containers(tmp_path):
    data = {
        "t": torch.arange(6.0).reshape(2, 3), "p": torch.nn.Parameter(torch.ones(2)), "a": np.arange(4.0),
        "s": np.float32(2.5), "o": collections.OrderedDict(x=1), "set": {1, 2}, "size": torch.Size([1, 2]),
    }  # fmt: skip
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(data, protocol=3))
    back = restricted_load(path)
    assert torch.equal(back["t"], data["t"]) and torch.equal(back["p"], data["p"])
    assert np.array_equal(back["a"], data["a"]) and back["s"] == np.float32(2.5)
    assert back["o"] == data["o"] and back["set"] == {1, 2} and back["size"] == torch.Size([1, 2])


def test_a_pocketgan_state_dict_file_loads_with_its_pruned_widths(tmp_path, cli):
    widths = {"synthesis.b4.const": 5, "synthesis.b16.conv0.conv": 7, "synthesis.b32.conv1.conv": 3}
    model = create_generator("stylegan2", size=32, channel_base=256, channel_max=16, z_dim=8, w_dim=8, n_mlp=3,
                             widths=widths)  # fmt: skip
    path = tmp_path / "student.pt"
    torch.save(model.state_dict(), path)
    loaded = load_model(path, arch="stylegan2").model
    assert loaded.spec() == model.spec()
    z = torch.randn(2, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(z), model.eval()(z), atol=0, rtol=0)
    result = cli("profile", path, "--arch", "stylegan2", "--json", tmp_path / "profile.json")
    assert result.code == 0
    params = sum(p.numel() for p in model.parameters())
    assert json.loads((tmp_path / "profile.json").read_text())["params"] == params


class _Evil:
    def __init__(self, func, *args):
        self.call = (func, args)

    def __reduce__(self):
        return self.call


@pytest.mark.parametrize("kind", ["os.system", "builtins.open", "builtins.eval", "foreign class"])
def test_restricted_unpickler_refuses_code_and_writes_nothing(tmp_path, kind):
    target = tmp_path / "pwned"
    payload = {
        "os.system": _Evil(os.system, f"touch {target}"),
        "builtins.open": _Evil(open, str(target), "w"),
        "builtins.eval": _Evil(eval, f"open({str(target)!r}, 'w').write('x')"),
        "foreign class": _Evil(argparse.Namespace, 1),
    }[kind]
    expected = {  # how pickle names them: posix.system on Linux, io.open
        "os.system": f"{os.system.__module__}.system", "builtins.open": f"{open.__module__}.open",
        "foreign class": "argparse.Namespace",
    }.get(kind, kind)  # fmt: skip
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": payload}, protocol=3))
    with pytest.raises(UnsafePickleError) as info:
        restricted_load(path)
    message = str(info.value)
    assert "\n" not in message and f"refusing to unpickle {expected} " in message
    assert not target.exists()


def test_cli_refuses_a_pickle_with_code_in_one_line(tmp_path, cli):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Evil(os.system, f"touch {target}")}, protocol=3))
    out = tmp_path / "onnx"
    result = cli("export", path, "--arch", "stylegan2", "-o", out)
    assert result.code == 2
    lines = [line for line in result.err.strip().splitlines() if line]
    assert len(lines) == 1 and "refusing to unpickle" in lines[0] and "system" in lines[0]
    assert not target.exists() and not out.exists()


# ------------------------------------------------------------------------------------------ mismatches


def test_a_resnet_checkpoint_with_arch_stylegan2_is_one_line(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    torch.save(create_generator("resnet9", ngf=4).state_dict(), path)
    with pytest.raises(PocketganError, match=r"not a StyleGAN2 generator checkpoint .*found model\.1\.weight"):
        load_model(path, arch="stylegan2")


def test_a_wrong_shaped_tensor_is_named(tmp_path):
    path = tmp_path / "bad.pt"
    ckpt = write_rosinality(path, REGULAR)
    ckpt["g_ema"]["convs.3.conv.weight"] = torch.randn(1, 16, 8, 3, 3)  # its input should be 16 channels
    torch.save(ckpt, path)
    with pytest.raises(PocketganError) as info:
        load_model(path, arch="stylegan2")
    assert "convs.3.conv.weight has shape (1, 16, 8, 3, 3)" in str(info.value)


def test_an_unused_tensor_and_a_disagreeing_option_are_named(tmp_path):
    path = tmp_path / "extra.pt"
    ckpt = write_rosinality(path, REGULAR)
    ckpt["g_ema"]["convs.0.extra"] = torch.zeros(3)
    torch.save(ckpt, path)
    with pytest.raises(PocketganError, match="not part of a StyleGAN2 of this layout: convs.0.extra"):
        load_model(path, arch="stylegan2")
    write_rosinality(path, REGULAR)
    with pytest.raises(PocketganError, match="the checkpoint's size is 32, not 256"):
        load_model(path, arch="stylegan2:size=256")
    with pytest.raises(PocketganError, match=r"z_dim is 16, not 512 \(from config=paper256\)"):
        load_model(path, arch="stylegan2:config=paper256")
