"""Feature networks: the domain network (training, determinism, cache), FID InceptionV3, the registry."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from pocketgan.distill.features import (
    DEGRADATION_NAMES,
    DomainConfig,
    DomainFeatureNet,
    FIDInceptionV3,
    degrade,
    domain_network_path,
    feature_distance,
    load_domain_network,
    load_feature_network,
    save_domain_network,
    train_domain_network,
)
from pocketgan.core.errors import PocketganError

TINY = DomainConfig(widths=(8, 16, 32, 64), crop=32, steps=40, batch_size=16, seed=0)


@pytest.fixture(scope="module")
def edges2photos(tmp_path_factory):
    """A tiny real dataset: 12 train + 8 val edges→photo pairs at 32 px, from the embedded builder."""
    from pocketgan.distill.data import build_dataset

    return build_dataset("edges2photos", tmp_path_factory.mktemp("data") / "e2p", size=32, count=12, val_count=8)


@pytest.fixture(scope="module")
def photos(edges2photos):
    from pocketgan.distill.data import open_dataset

    dataset = open_dataset(edges2photos, "train")
    return torch.stack([dataset[i]["B"] for i in range(len(dataset))])


@pytest.fixture(scope="module")
def tiny_network(photos):
    return train_domain_network(photos, TINY, name="pocketgan-test")


# ---------------------------------------------------------------- the domain network


def test_domain_network_levels_embedding_and_frozen_state(tiny_network):
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    maps = tiny_network(x)
    assert [tuple(m.shape) for m in maps] == [(2, 8, 32, 48), (2, 16, 16, 24), (2, 32, 8, 12), (2, 64, 4, 6)]
    assert tiny_network.embed(x).shape == (2, tiny_network.num_features) == (2, 8 + 16 + 32 + 64)
    assert not tiny_network.training and not any(p.requires_grad for p in tiny_network.parameters())
    tiny_network.train()  # a frozen network stays in eval mode (its batch-norm statistics never move)
    assert not tiny_network.training
    # Gradients still reach the input: it can serve as OMGD's perceptual network.
    image = x.clone().requires_grad_(True)
    sum(m.mean() for m in tiny_network(image)).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert tiny_network(torch.zeros(1, 3, 8, 8))[0].shape[-1] == DomainFeatureNet.MIN_SIZE  # tiny inputs upsampled


def test_training_learns_its_tasks_above_chance(tiny_network):
    held_out = tiny_network.training_info["held_out"]  # fresh crops and degradations, never trained on
    chance = 1 / len(DEGRADATION_NAMES)
    assert held_out["degradation_accuracy"] > chance + 0.08, held_out
    assert held_out["photo_accuracy"] > 3 / 12, held_out  # 12 photos: chance is 1/12
    assert tiny_network.training_info["crop"] == 32


def test_training_is_deterministic_for_a_seed(photos):
    config = DomainConfig(widths=(4, 8, 8, 8), crop=16, steps=3, batch_size=4, seed=3)
    first = train_domain_network(photos, config).state_dict()
    again = train_domain_network(photos, config).state_dict()
    other = train_domain_network(photos, replace(config, seed=4)).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_features_grade_degradation_severity(tiny_network, photos):
    """Distance to the clean image grows with blur and noise strength (the metrics rely on this)."""
    clean = [((p.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8) for p in photos[:6]]

    def distance(kind: str, severity: float) -> float:
        rng = np.random.default_rng(0)
        degraded = [degrade(c, DEGRADATION_NAMES.index(kind), severity, rng) for c in clean]
        to_tensor = lambda images: torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
        with torch.no_grad():
            return float(feature_distance(tiny_network(to_tensor(degraded)), tiny_network(to_tensor(clean))).mean())

    assert distance("none", 0.0) == pytest.approx(0.0, abs=1e-9)
    for kind in ("blur", "noise", "jpeg", "checkerboard"):
        assert 0 < distance(kind, 0.2) < distance(kind, 1.0), kind


def test_degradations_are_deterministic_and_change_the_image(photos):
    image = ((photos[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    for kind, name in enumerate(DEGRADATION_NAMES):
        out = degrade(image, kind, 0.7, np.random.default_rng(1))
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert np.array_equal(out, degrade(image, kind, 0.7, np.random.default_rng(1))), name
        assert np.array_equal(out, image) == (name == "none"), name


def test_feature_distance_is_zero_for_identical_and_symmetric():
    a = [torch.rand(3, 4, 8, 8), torch.rand(3, 6, 4, 4)]
    b = [torch.rand(3, 4, 8, 8), torch.rand(3, 6, 4, 4)]
    assert torch.allclose(feature_distance(a, a), torch.zeros(3))
    assert torch.allclose(feature_distance(a, b), feature_distance(b, a))
    assert (feature_distance(a, b) > 0).all()
    with pytest.raises(PocketganError, match="levels"):
        feature_distance(a, b[:1])


# ---------------------------------------------------------------- cache and registry


def test_domain_network_is_trained_once_then_cached(edges2photos, tmp_path, monkeypatch):
    import pocketgan.distill.features.domain as domain

    calls = []
    real_train = domain.train_domain_network
    monkeypatch.setattr(domain, "train_domain_network", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    config = DomainConfig(widths=(4, 8, 8, 8), crop=16, steps=2, batch_size=4)
    net = load_feature_network(None, data=edges2photos, cache_dir=tmp_path, domain_config=config)
    assert net.name == "pocketgan-edges2photos"  # dataset.json's name
    (weights,) = tmp_path.glob("pocketgan-edges2photos-*.safetensors")
    assert weights == domain_network_path(edges2photos, config=config, cache_dir=tmp_path)
    sidecar = weights.with_name(weights.name + ".json")
    info = json.loads(sidecar.read_text())
    assert info["config"]["steps"] == 2 and len(info["dataset_fingerprint"]) == 64
    stamp = weights.stat().st_mtime_ns

    again = load_feature_network("domain", data=edges2photos, cache_dir=tmp_path, domain_config=config)
    assert calls == [1] and weights.stat().st_mtime_ns == stamp  # a cache hit: no retraining, no rewrite
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(net.embed(x), again.embed(x))
    # By name without --data: the only cached network of that name; by file; by its cache file's name.
    assert load_feature_network("pocketgan-edges2photos", cache_dir=tmp_path).key == net.key
    assert torch.equal(load_feature_network(str(weights)).embed(x), net.embed(x))
    assert load_feature_network(weights.stem, cache_dir=tmp_path).key == net.key
    # Another config is another network.
    other = DomainConfig(widths=(4, 8, 8, 8), crop=16, steps=2, batch_size=4, seed=1)
    second = load_feature_network(None, data=edges2photos, cache_dir=tmp_path, domain_config=other)
    assert calls == [1, 1] and len(list(tmp_path.glob("*.safetensors"))) == 2 and second.key != net.key
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_a_named_network_resolves_by_content_key_not_by_date(edges2photos, tmp_path):
    configs = [DomainConfig(widths=(4, 8, 8, 8), crop=16, steps=2, batch_size=4, seed=seed) for seed in (0, 1)]
    first, second = (load_feature_network("domain", data=edges2photos, cache_dir=tmp_path, domain_config=c)
                     for c in configs)  # fmt: skip
    paths = [domain_network_path(edges2photos, config=c, cache_dir=tmp_path) for c in configs]
    files = dict(zip(paths, (first, second), strict=True))
    assert len({n.key for n in files.values()}) == 2
    for newest in files:  # whichever file was written last, the name finds the one of the config asked for
        os.utime(newest, (newest.stat().st_atime, newest.stat().st_mtime + 100))
        for config, network in zip(configs, (first, second), strict=True):
            named = load_feature_network("pocketgan-edges2photos", data=edges2photos, cache_dir=tmp_path,
                                         domain_config=config)  # fmt: skip
            assert named.key == network.key
        for path, network in files.items():
            assert load_feature_network(path.stem, cache_dir=tmp_path).key == network.key
    with pytest.raises(PocketganError, match="2 cached feature networks are called pocketgan-edges2photos") as info:
        load_feature_network("pocketgan-edges2photos", cache_dir=tmp_path)  # no --data: ambiguous, not "the newest"
    assert all(path.stem in str(info.value) for path in files)


def test_the_key_is_a_content_address_of_the_weights(tiny_network, tmp_path):
    saved = save_domain_network(tiny_network, tmp_path / "net.safetensors")
    reloaded = load_domain_network(saved)
    assert reloaded.key == tiny_network.key and len(tiny_network.key) == 16
    assert json.loads(saved.with_name(saved.name + ".json").read_text())["key"] == tiny_network.key
    renamed = DomainFeatureNet(tiny_network.level_channels, name="another-name")
    renamed.load_state_dict(tiny_network.state_dict())
    assert renamed.key == tiny_network.key  # the name is a label, not content
    first = renamed.key
    with torch.no_grad():
        renamed.levels[0][0].weight[0, 0, 0, 0] += 1e-6
    renamed.load_state_dict(renamed.state_dict())  # new weights loaded: a new key
    assert renamed.key != first
    assert renamed.double().key != renamed.float().key  # the dtype is part of it

    from safetensors.torch import save_file

    state = {k: v.clone() for k, v in tiny_network.state_dict().items()}
    state["levels.0.0.weight"][0, 0, 0, 0] += 1.0  # weights replaced behind the sidecar's back
    save_file(state, str(saved))
    with pytest.raises(PocketganError, match="the weights do not match their description"):
        load_domain_network(saved)


def test_the_default_network_learns_from_the_training_photos(edges2photos):
    """What the README's OMGD qualifier says: the perceptual network has seen the ground-truth photos."""
    from pocketgan.distill.data import open_dataset
    from pocketgan.distill.features.domain import load_dataset_photos, to_uint8_images

    train = open_dataset(edges2photos, "train")
    photos = load_dataset_photos(edges2photos, max_images=100)
    assert len(photos) == len(train) == 12
    for index, photo in enumerate(photos):
        item = train[index]
        assert np.array_equal(photo, to_uint8_images(item["B"][None])[0])  # the B (photo) side...
        assert not np.array_equal(photo, to_uint8_images(item["A"][None])[0])  # ...not the edge maps


def test_training_reports_progress_once_per_step(photos):
    events = []
    config = DomainConfig(widths=(4, 8), crop=16, steps=3, batch_size=4)
    train_domain_network(photos, config, name="pocketgan-test", progress=events.append)
    assert [e.completed for e in events] == [0, 1, 2, 3, 3] and events[-1].finished
    assert events[0].task == "training feature network pocketgan-test" and events[0].total == 3
    assert events[1].status.startswith("degradation ") and " photo " in events[1].status


def test_cache_location_follows_pocketgan_cache(monkeypatch, tmp_path):
    from pocketgan.distill.features import default_cache_dir

    monkeypatch.setenv("POCKETGAN_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "features"
    monkeypatch.delenv("POCKETGAN_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "pocketgan", "features")


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("vgg16", {}, "unknown feature network 'vgg16'"),
        ("domain", {}, "pass --data"),
        ("inception", {}, "pt_inception-2015-12-05"),
        ("pocketgan-nothing", {}, "no cached feature network pocketgan-nothing"),
        ("missing.pth", {}, "no such InceptionV3 weights file"),
    ],
)
def test_bad_feature_network_requests_are_one_line_errors(name, kwargs, message, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(PocketganError, match=message) as info:
        load_feature_network(str(tmp_path / name) if name.endswith(".pth") else name, cache_dir=tmp_path, **kwargs)
    assert "\n" not in str(info.value)


def test_a_named_network_must_match_the_dataset(edges2photos, tmp_path):
    with pytest.raises(PocketganError, match="does not belong to dataset"):
        load_feature_network("pocketgan-horse2zebra", data=edges2photos, cache_dir=tmp_path)


# ---------------------------------------------------------------- InceptionV3 (FID configuration)


def test_fid_inception_builds_runs_and_reloads_its_state_dict(tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = FIDInceptionV3().freeze()
    # pytorch-fid's FID Inception (torchvision Inception3, 1008 classes, no aux head) has exactly this many.
    assert sum(p.numel() for p in net.parameters()) == 23_850_960
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in net.state_dict()
    x = torch.rand(1, 3, 64, 64) * 2 - 1  # resized to 299×299 inside
    with torch.no_grad():
        maps = net(x)
    assert [tuple(m.shape) for m in maps] == [(1, 64, 73, 73), (1, 192, 35, 35), (1, 768, 17, 17), (1, 2048, 8, 8)]
    embedding = net.pool(maps)
    assert embedding.shape == (1, 2048) and net.name == "inception"

    # A state dict in the published layout (num_batches_tracked dropped, as in the pytorch-fid file) reloads.
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    with torch.no_grad():
        assert torch.allclose(load_feature_network(str(path)).embed(x), embedding, atol=1e-5)
    # "inception" by name finds the file in the cache directory (or torch hub's checkpoints).
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert isinstance(load_feature_network("inception", cache_dir=tmp_path), FIDInceptionV3)

    del state["Mixed_5b.branch1x1.conv.weight"]
    torch.save(state, path)
    with pytest.raises(PocketganError, match="missing: Mixed_5b.branch1x1.conv.weight"):
        load_feature_network(str(path))
