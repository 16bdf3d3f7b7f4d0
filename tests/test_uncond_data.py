"""The embedded unconditional dataset (``digits``): determinism, the honest split, the images, the loader, errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pocketgan.core.errors import PocketganError
from pocketgan.distill.data import build_dataset, dataset_fingerprint, open_dataset, read_rgb

SKLEARN_BITMAPS = 1797


def build_digits(out: Path, *, count: int = 24, val_count: int = 12, seed: int = 0, size: int = 32) -> Path:
    return build_dataset("digits", out, size=size, count=count, val_count=val_count, seed=seed)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return build_digits(tmp_path_factory.mktemp("digits") / "digits", seed=5)


def provenance(root: Path) -> dict[str, list[dict]]:
    return json.loads((root / "digits.json").read_text())


def sklearn_digits():
    from sklearn.datasets import load_digits

    return load_digits()


def test_cli_builds_single_image_folders_with_the_images_layout(tmp_path, cli):
    result = cli("data", "digits", "-o", tmp_path / "d", "--size", "24", "--count", "6", "--val-count", "3",
                 "--no-progress")  # fmt: skip
    assert result.code == 0, result.err
    assert "6 train + 3 val images at 24×24" in result.out
    meta = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert meta["layout"] == "images" and meta["mirror"] is False and meta["counts"] == {"train": 6, "val": 3}
    assert meta["content_hash"] == dataset_fingerprint(tmp_path / "d")
    files = sorted((tmp_path / "d" / "train").glob("*.png"))
    assert len(files) == 6 and all(read_rgb(f).shape == (24, 24, 3) for f in files)


def test_same_seed_same_bytes_another_seed_other_images_more_count_appends(tmp_path, digits):
    again = build_digits(tmp_path / "again", seed=5)
    assert dataset_fingerprint(again) == dataset_fingerprint(digits)
    other = build_digits(tmp_path / "other", seed=6)
    assert dataset_fingerprint(other) != dataset_fingerprint(digits)
    more = build_digits(tmp_path / "more", seed=5, count=30)
    for path in sorted((digits / "train").glob("*.png")):
        assert (more / "train" / path.name).read_bytes() == path.read_bytes()
    assert len(list((more / "train").glob("*.png"))) == 30


def test_train_and_val_use_disjoint_bitmaps_the_last_fifth_of_each_class(tmp_path):
    root = build_digits(tmp_path / "all", count=1438, val_count=359, size=16)
    files = provenance(root)
    train = {item["bitmap"] for item in files["train"]}
    val = {item["bitmap"] for item in files["val"]}
    assert not train & val
    assert len(train) + len(val) == SKLEARN_BITMAPS  # every bitmap is used exactly once at these counts
    labels = sklearn_digits().target
    for digit in range(10):
        members = list(np.flatnonzero(labels == digit))  # file order
        val_members = [m for m in members if m in val]
        assert val_members == members[-len(val_members) :]
        assert abs(len(val_members) / len(members) - 0.2) < 0.01


def test_each_image_is_its_recorded_digit_dark_ink_on_white(digits):
    data = sklearn_digits()
    for item in provenance(digits)["train"][:10]:
        assert item["label"] == data.target[item["bitmap"]]
        assert item["file"].endswith(f"_{item['label']}.png")
        image = read_rgb(digits / item["file"])
        assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
        gray = image[..., 0].astype(np.float32)
        border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
        assert border.mean() > 250 and gray.min() < 64  # dark strokes on paper that shows all round the digit
        # the image is the bitmap (upsampled by an independent path) up to the small recorded jitter
        reference = 255 - cv2.resize(data.images[item["bitmap"]] / 16 * 255, (26, 26), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((32, 32), 255.0, np.float32)
        canvas[3:29, 3:29] = np.clip(reference, 0, 255)
        assert np.corrcoef(canvas.ravel(), gray.ravel())[0, 1] > 0.5


def test_images_differ_between_bitmaps_and_jitter_between_repeats(tmp_path):
    root = build_digits(tmp_path / "repeat", count=1440, val_count=1, size=16)
    files = provenance(root)["train"]
    assert files[0]["bitmap"] == files[1438]["bitmap"]  # the pool wrapped around
    first, repeat = (read_rgb(root / files[i]["file"]) for i in (0, 1438))
    assert not np.array_equal(first, repeat)
    assert files[0]["angle"] != files[1438]["angle"]


def test_loader_yields_real_images_only_and_never_mirrors_digits(digits):
    dataset = open_dataset(digits, split="val", size=32, augment=True, seed=1)
    assert type(dataset).__name__ == "ImageDataset" and dataset.layout == "images" and len(dataset) == 12
    item = dataset[3]
    assert set(item) == {"B", "name"} and item["B"].shape == (3, 32, 32)
    assert item["B"].min() >= -1 and item["B"].max() == 1.0
    names = sorted(p.stem for p in (digits / "val").glob("*.png"))
    assert item["name"] == names[3]
    for epoch in range(3):
        dataset.set_epoch(epoch)
        assert torch.equal(dataset[3]["B"], item["B"])  # mirror: false in dataset.json


def test_a_plain_image_folder_is_read_as_images_when_asked_and_mirrored_with_augment(tmp_path):
    folder = tmp_path / "faces" / "train"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
    plain = open_dataset(tmp_path / "faces", layout="images")
    assert plain.layout == "images" and plain[0]["B"].shape == (3, 20, 20)
    mirrored = open_dataset(tmp_path / "faces", layout="images", augment=True, seed=0)
    flips = [not torch.equal(mirrored[i]["B"], plain[i]["B"]) for i in range(6)]
    assert any(flips) and not all(flips)
    for i, flipped in enumerate(flips):
        if flipped:
            assert torch.equal(mirrored[i]["B"], plain[i]["B"].flip(-1))
    with pytest.raises(PocketganError, match="layout 'single'"):
        open_dataset(tmp_path / "faces", layout="single")


@pytest.mark.parametrize("settings", [{"size": 8}, {"count": 0}, {"val_count": 0}])
def test_bad_settings_are_one_line_and_write_nothing(tmp_path, settings):
    with pytest.raises(PocketganError, match="digits needs size"):
        build_dataset("digits", tmp_path / "bad", **{"size": 32, "count": 4, "val_count": 2, **settings})
    assert not (tmp_path / "bad").exists()


def test_unknown_option_and_foreign_folder_are_refused(tmp_path, cli):
    with pytest.raises(PocketganError, match="has no option 'photos'"):
        build_dataset("digits", tmp_path / "x", photos="somewhere")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = cli("data", "digits", "-o", foreign, "--count", "2", "--val-count", "1", "--no-progress")
    assert result.code == 2 and "is not empty" in result.err and len(result.err.strip().splitlines()) == 1
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_the_domain_feature_network_trains_on_it_and_tells_a_collapse(digits, tmp_path):
    from pocketgan.distill.features import load_feature_network
    from pocketgan.distill.features.domain import DomainConfig
    from pocketgan.distill.quality import frechet_distance

    root = build_digits(tmp_path / "fid", count=200, val_count=100, size=32)
    net = load_feature_network(None, data=root, cache_dir=tmp_path / "cache",
                               domain_config=DomainConfig(steps=40, batch_size=16))  # fmt: skip
    assert net.name == "pocketgan-digits"
    train, val = open_dataset(root, "train"), open_dataset(root, "val")

    def embed(items: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return net.pool(net(torch.stack(items))).double()

    reals = embed([val[i]["B"] for i in range(100)])
    same = embed([train[i]["B"] for i in range(100)])
    ones = [train[i]["B"] for i in range(200) if train[i]["name"].endswith("_1")]
    collapsed = embed((ones * 100)[:100])
    assert frechet_distance(reals, collapsed) > 3 * frechet_distance(reals, same)
