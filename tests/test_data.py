"""Datasets: the edges2photos builder (via the CLI), the aligned/unaligned loaders, odd files, fingerprints."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pocketgan.distill.data import (
    DatasetWarning,
    build_dataset,
    dataset_fingerprint,
    list_builders,
    open_dataset,
    read_rgb,
)
from pocketgan.core.errors import PocketganError

TINY = ["--size", "32", "--count", "8", "--val-count", "4", "--no-progress"]


def build_tiny(out: Path, seed: int = 0, count: int = 8, **options) -> Path:
    return build_dataset("edges2photos", out, size=32, count=count, val_count=4, seed=seed, **options)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny edges2photos (8 train + 4 val pairs at 32 px) shared by the read-only tests."""
    return build_tiny(tmp_path_factory.mktemp("tiny") / "edges2photos", seed=3)


def halves(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    half = image.shape[1] // 2
    return image[:, :half], image[:, half:]


def png_files(root: Path, split: str) -> list[Path]:
    return sorted((root / split).glob("*.png"))


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def shapes_photo(seed: int, height: int = 96, width: int = 128) -> np.ndarray:
    """A colourful synthetic 'photo' (rectangles and discs on a gradient): it has edges to find."""
    rng = np.random.default_rng(seed)
    photo = np.zeros((height, width, 3), np.uint8)
    photo[:] = np.linspace(40, 200, width, dtype=np.uint8)[None, :, None]
    for _ in range(8):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = (int(v) for v in rng.integers(0, (width, height)))
        if rng.random() < 0.5:
            cv2.circle(photo, (x, y), int(rng.integers(6, 24)), colour, -1)
        else:
            cv2.rectangle(photo, (x, y), (x + int(rng.integers(8, 40)), y + int(rng.integers(8, 40))), colour, -1)
    return photo


# --------------------------------------------------------------------------- building edges2photos


def test_cli_builds_an_aligned_edges2photos_with_its_manifest(tmp_path, cli):
    out = tmp_path / "data"
    result = cli("data", "edges2photos", "--out", out, "--seed", "3", *TINY)
    assert result.code == 0, result.err
    assert "8 train + 4 val pairs at 32×32 px from 8 photos" in result.out

    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary folder left behind
    assert len(png_files(out, "train")) == 8 and len(png_files(out, "val")) == 4
    for path in png_files(out, "train") + png_files(out, "val"):
        assert cv2.imread(str(path)).shape == (32, 64, 3)  # A | B side by side
    meta = json.loads((out / "dataset.json").read_text())
    assert (meta["name"], meta["layout"], meta["size"], meta["seed"]) == ("edges2photos", "aligned", 32, 3)
    assert meta["counts"] == {"train": 8, "val": 4}
    assert {s["name"] for s in meta["sources"]} >= {"astronaut", "chelsea", "coffee", "rocket"}
    assert "val region" in meta["split_rule"]
    assert meta["content_hash"] == dataset_fingerprint(out)


def test_same_seed_same_bytes_and_more_pairs_only_append(tmp_path, tiny):
    again = build_tiny(tmp_path / "again", seed=3)
    assert dataset_fingerprint(again) == dataset_fingerprint(tiny)
    assert dataset_fingerprint(build_tiny(tmp_path / "other", seed=4)) != dataset_fingerprint(tiny)

    longer = build_tiny(tmp_path / "longer", seed=3, count=10)
    assert len(png_files(longer, "train")) == 10
    for path in png_files(tiny, "train"):
        assert (longer / "train" / path.name).read_bytes() == path.read_bytes()


def test_train_and_val_crops_come_from_disjoint_regions_of_the_photos(tiny):
    meta = json.loads((tiny / "dataset.json").read_text())
    crops = json.loads((tiny / "crops.json").read_text())
    sources = {s["name"]: s for s in meta["sources"]}
    for source in sources.values():
        train, val = (source["regions"][s] for s in ("train", "val"))
        overlap_x = min(train[2], val[2]) - max(train[0], val[0])
        overlap_y = min(train[3], val[3]) - max(train[1], val[1])
        assert overlap_x <= 0 or overlap_y <= 0, source["name"]
    for split in ("train", "val"):
        assert [c["file"] for c in crops[split]] == [f"{split}/{p.name}" for p in png_files(tiny, split)]
        for crop in crops[split]:
            x0, y0, x1, y1 = sources[crop["photo"]]["regions"][split]
            assert x0 <= crop["x"] and crop["x"] + crop["side"] <= x1
            assert y0 <= crop["y"] and crop["y"] + crop["side"] <= y1


def test_photo_side_is_the_recorded_crop_of_the_real_photograph(tiny):
    meta = json.loads((tiny / "dataset.json").read_text())
    import skimage.data

    origins = {s["name"]: Path(skimage.data.data_dir) / Path(s["origin"]).name for s in meta["sources"]}
    for crop in json.loads((tiny / "crops.json").read_text())["val"]:
        photo = cv2.cvtColor(cv2.imread(str(origins[crop["photo"]])), cv2.COLOR_BGR2RGB)
        x, y, side = crop["x"], crop["y"], crop["side"]
        expected = cv2.resize(photo[y : y + side, x : x + side], (32, 32), interpolation=cv2.INTER_AREA)
        if crop["flip"]:
            expected = expected[:, ::-1]
        _, photo_side = halves(tiny / crop["file"])
        assert np.abs(photo_side.astype(int) - expected).max() <= 1


def test_edge_side_is_dark_lines_on_white_where_the_photo_changes(tiny):
    dark_fractions = []
    for path in png_files(tiny, "train") + png_files(tiny, "val"):
        edges, photo = halves(path)
        assert (edges[..., 0] == edges[..., 1]).all() and (edges[..., 1] == edges[..., 2]).all()  # gray lines
        assert (edges > 200).mean() > 0.6  # mostly white
        assert photo.std() > 5  # the photo side is not blank
        dark = edges[..., 0] < 128
        dark_fractions.append(dark.mean())
        if dark.mean() > 0.02:  # lines sit where the photo has strong gradients
            gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32)
            gradient = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
            assert gradient[dark].mean() > 1.5 * gradient[~dark].mean(), path.name
    assert np.median(dark_fractions) > 0.01  # there are lines, not blank sheets


def test_photos_folder_builds_from_the_users_photos_and_reports_odd_files(tmp_path, cli):
    photos = tmp_path / "photos"
    write_rgb(photos / "beach.png", shapes_photo(1))
    write_rgb(photos / "trip" / "city.jpg", shapes_photo(2, height=128, width=96))
    write_rgb(photos / "icon.png", shapes_photo(3, height=20, width=20))  # too small to crop
    (photos / "notes.txt").write_text("not a photo")
    out = tmp_path / "data"

    result = cli("data", "edges2photos", "-o", out, "--option", f"photos={photos}", *TINY)
    assert result.code == 0, result.err
    assert result.err.count("warning: ") == 1 and "skipped 2 of 4 files" in result.err
    assert "icon.png" in result.err and "notes.txt" in result.err
    meta = json.loads((out / "dataset.json").read_text())
    assert [s["name"] for s in meta["sources"]] == ["beach", "trip-city"]
    assert {p.name.split("_", 1)[1] for p in png_files(out, "train")} == {"beach.png", "trip-city.png"}


def test_bad_builder_input_is_one_line_and_writes_nothing(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    result = cli("data", "edges2photos", "--out", tmp_path / "a", "--option", f"photos={tmp_path / 'empty'}", *TINY)
    assert result.code == 2 and result.err.startswith("error: ") and result.err.count("\n") == 1
    assert "no usable photos" in result.err and not (tmp_path / "a").exists()

    busy = tmp_path / "busy"
    (busy / "keep.txt").parent.mkdir()
    (busy / "keep.txt").write_text("mine")
    result = cli("data", "edges2photos", "--out", busy, *TINY)
    assert result.code == 2 and "holds no dataset.json" in result.err
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]


def test_rebuild_replaces_a_previous_build(tmp_path):
    out = build_tiny(tmp_path / "data", seed=1, count=9)
    build_tiny(out, seed=2)
    assert len(png_files(out, "train")) == 8 and json.loads((out / "dataset.json").read_text())["seed"] == 2


def test_data_help_lists_the_builders(cli):
    assert "edges2photos" in list_builders()
    result = cli("data", "--help")
    assert result.code == 0 and "Builders" in result.out and "edges2photos" in result.out and "inspect" in result.out


def test_builder_options_are_declared_and_checked(tmp_path, cli):
    result = cli("data", "edges2photos", "-o", tmp_path / "x", "--option", "photoz=somewhere", *TINY)
    assert result.code == 2 and not (tmp_path / "x").exists()
    expected = "error: dataset builder 'edges2photos' has no option 'photoz' (did you mean photos?) (its options: photos)"
    assert result.err == expected + "\n"
    with pytest.raises(PocketganError, match="has no option 'colour'"):
        build_dataset("edges2photos", tmp_path / "y", size=32, colour="red")
    result = cli("data", "edges2photos", "-o", tmp_path / "z", "--size", "32x48", *TINY[2:])
    assert result.code == 2 and "--size must be square here" in result.err


PLUGIN = """
import numpy as np
from pocketgan.distill.data.builders import DatasetBuilder, write_aligned_dataset


def build(out, *, size=24, count=3, val_count=2, seed=0, level="40", progress=None):
    def pairs(split, n):
        for i in range(n):
            a = np.full((size, size, 3), int(level), np.uint8)
            yield f"{i}", a, 255 - a

    splits = {"train": (count, pairs("train", count)), "val": (val_count, pairs("val", val_count))}
    return write_aligned_dataset(out, splits, {"name": "flat", "size": size, "seed": seed}, progress=progress)


BUILDER = DatasetBuilder("flat", "flat grey pairs (a test plugin)", build, {"level": "grey level of A"})
"""


def test_a_plugin_builder_is_a_data_command_without_touching_pocketgan(tmp_path, monkeypatch, cli):
    from pocketgan.distill.data.builders import BUILDERS

    (tmp_path / "pg_flat_plugin.py").write_text(PLUGIN)
    info = tmp_path / "pg_flat_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pg-flat-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pocketgan.datasets]\nflat = pg_flat_plugin:BUILDER\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(BUILDERS, "_plugins", None)  # entry points are read once per process: read them again
    monkeypatch.setattr(BUILDERS, "_entries", dict(BUILDERS._entries))

    result = cli("data", "--help")
    assert result.code == 0 and "flat" in result.out and "flat grey pairs" in result.out
    help_text = cli("data", "flat", "--help").out
    assert "(default 24)" in help_text and "level: grey level of A" in help_text
    result = cli("data", "flat", "-o", tmp_path / "flat", "--count", "2", "--option", "level=90", "--no-progress")
    assert result.code == 0, result.err
    assert "2 train + 2 val pairs at 24×24 px" in result.out
    edges, photo = halves(png_files(tmp_path / "flat", "train")[0])
    assert (edges == 90).all() and (photo == 165).all()
    sys.modules.pop("pg_flat_plugin", None)


def test_builders_report_progress_through_a_callback(tmp_path, monkeypatch):
    from pocketgan.distill.data import images

    events = []
    build_dataset("edges2photos", tmp_path / "p", size=32, count=5, val_count=3, progress=events.append)
    assert {e.task for e in events} == {"building p"} and events[-1].finished
    assert events[-1].completed == events[-1].total == 8
    assert [e.completed for e in events if e.status == "val"][-1] == 8 and any(e.status == "train" for e in events)

    monkeypatch.setattr(images, "PROGRESS_MIN_FILES", 1)
    scanned = []
    images.scan_images(tmp_path / "p" / "train", progress=scanned.append)
    assert scanned[-1].task == "checking train/" and scanned[-1].completed == 5 and scanned[-1].finished


def test_inspect_describes_a_dataset(tiny, cli):
    result = cli("data", "inspect", tiny)
    assert result.code == 0, result.err
    assert "aligned" in result.out and "train 8" in result.out and "val 4" in result.out and "32×32 ×8" in result.out
    assert dataset_fingerprint(tiny) in result.out


# --------------------------------------------------------------------------- loaders


def test_aligned_loader_shapes_ranges_and_direction(tiny):
    dataset = open_dataset(tiny, split="train", size=16)
    assert len(dataset) == 8 and dataset.layout == "aligned"
    item = dataset[0]
    assert item["A"].shape == item["B"].shape == (3, 16, 16) and item["A"].dtype == torch.float32
    assert -1 <= item["A"].min() and item["B"].max() <= 1 and item["name"] == png_files(tiny, "train")[0].stem

    native = open_dataset(tiny, split="val")[1]
    edges, photo = halves(png_files(tiny, "val")[1])
    assert native["A"].shape == (3, 32, 32)
    assert torch.allclose(native["A"], torch.from_numpy(edges).permute(2, 0, 1).float() / 127.5 - 1)
    assert torch.allclose(native["B"], torch.from_numpy(photo).permute(2, 0, 1).float() / 127.5 - 1)

    swapped = open_dataset(tiny, split="val", direction="BtoA")[1]
    assert torch.equal(swapped["A"], native["B"]) and torch.equal(swapped["B"], native["A"])


def write_mirror_pairs(root: Path, count: int = 6, size: int = 40) -> None:
    """Aligned pairs whose two halves are the same asymmetric image: a shared transform keeps A == B."""
    for i in range(count):
        image = np.zeros((size, size, 3), np.uint8)
        image[:, :, 0] = np.linspace(0, 255, size, dtype=np.uint8)[None, :]  # red grows left → right
        image[:, :, 1] = np.linspace(0, 255, size, dtype=np.uint8)[:, None]  # green grows top → bottom
        image[:, :, 2] = 40 * i
        write_rgb(root / "train" / f"{i}.png", np.concatenate([image, image], axis=1))


def test_augment_is_a_function_of_seed_epoch_and_index(tmp_path):
    write_mirror_pairs(tmp_path)
    first = open_dataset(tmp_path, size=32, augment=True, seed=7)
    second = open_dataset(tmp_path, size=32, augment=True, seed=7)
    second.set_epoch(5)
    [second[i] for i in reversed(range(6))]  # another history of calls must not matter
    second.set_epoch(0)
    for i in range(6):
        a, b = first[i], second[i]
        assert torch.equal(a["A"], b["A"]) and torch.equal(a["A"], a["B"])  # same crop and flip on both halves

    plain = open_dataset(tmp_path, size=32)[0]["A"]
    flips = set()
    for epoch in range(12):
        first.set_epoch(epoch)
        item = first[0]["A"]
        assert item.shape == (3, 32, 32)
        flips.add(bool(item[0, :, 0].mean() > item[0, :, -1].mean()))  # red decreasing: mirrored
    assert flips == {True, False}
    first.set_epoch(0)
    assert not torch.equal(first[0]["A"], plain)  # a random crop of the 286/256 enlargement, not a resize
    other_seed = open_dataset(tmp_path, size=32, augment=True, seed=8)
    assert any(not torch.equal(other_seed[i]["A"], first[i]["A"]) for i in range(6))


def test_augment_without_size_keeps_the_native_size(tmp_path):
    write_mirror_pairs(tmp_path, count=2, size=36)
    assert open_dataset(tmp_path, augment=True)[1]["A"].shape == (3, 36, 36)


def write_unaligned(root: Path, split: str = "train", count_a: int = 3, count_b: int = 5) -> None:
    """``<split>A`` images are uniformly dark (value 10·i), ``<split>B`` images bright (200 + 10·i)."""
    for i in range(count_a):
        write_rgb(root / f"{split}A" / f"a{i}.png", np.full((24, 20, 3), 10 * i, np.uint8))
    for i in range(count_b):
        write_rgb(root / f"{split}B" / f"b{i}.jpg", np.full((20, 24, 3), 200 + 10 * i, np.uint8))


def pixel(t: torch.Tensor) -> int:
    return round((t.mean().item() + 1) * 127.5)


def test_unaligned_loader_pairs_by_index_or_at_random(tmp_path):
    write_unaligned(tmp_path)
    dataset = open_dataset(tmp_path, split="train", size=16)
    assert dataset.layout == "unaligned" and len(dataset) == 5  # max(#A, #B)
    items = [dataset[i] for i in range(5)]
    assert [item["name"] for item in items] == ["a0", "a1", "a2", "a0", "a1"]
    assert [pixel(item["A"]) for item in items] == [0, 10, 20, 0, 10]
    assert [abs(pixel(item["B"]) - (200 + 10 * i)) <= 2 for i, item in enumerate(items)] == [True] * 5
    assert items[0]["A"].shape == items[0]["B"].shape == (3, 16, 16)

    backwards = open_dataset(tmp_path, split="train", size=16, direction="BtoA")
    assert backwards[1]["name"] == "b1" and pixel(backwards[1]["A"]) > 190 and pixel(backwards[1]["B"]) < 30

    shuffled = open_dataset(tmp_path, size=16, augment=True, seed=1)
    drawn = [pixel(shuffled[i]["B"]) for i in range(5)]
    assert drawn == [pixel(open_dataset(tmp_path, size=16, augment=True, seed=1)[i]["B"]) for i in range(5)]
    assert len(set(drawn)) > 1


# --------------------------------------------------------------------------- odd files and errors


def test_odd_images_are_converted_or_skipped_with_one_warning(tmp_path, capfd):
    train = tmp_path / "train"
    pair = np.concatenate([np.full((20, 20, 3), (200, 10, 10), np.uint8), np.full((20, 20, 3), 90, np.uint8)], 1)
    write_rgb(train / "good.png", pair)
    cv2.imwrite(str(train / "gray.png"), np.full((20, 40), 77, np.uint8))
    rgba = np.dstack([cv2.cvtColor(pair, cv2.COLOR_RGB2BGR), np.full((20, 40), 255, np.uint8)])
    rgba[:, 20:, 3] = 0  # right half fully transparent → white
    cv2.imwrite(str(train / "rgba.png"), rgba)
    cv2.imwrite(str(train / "deep.png"), np.full((20, 40), 65535, np.uint16))  # 16-bit white
    data = (train / "good.png").read_bytes()
    (train / "truncated.png").write_bytes(data[: len(data) // 2])
    cv2.imwrite(str(train / "cut.jpg"), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
    (train / "cut.jpg").write_bytes((train / "cut.jpg").read_bytes()[:-200])
    write_rgb(train / "tiny.png", pair[:6, :12])
    (train / "fake.png").write_text("not an image at all")
    (train / "notes.txt").write_text("readme")
    capfd.readouterr()

    with pytest.warns(DatasetWarning) as record:
        dataset = open_dataset(tmp_path, split="train")
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 5 of 9 files" in message and "2 truncated" in message
    for name in ("truncated.png", "cut.jpg", "tiny.png", "fake.png", "notes.txt"):
        assert name in message
    assert capfd.readouterr().err == ""  # the codecs were never fed the broken files

    items = {item["name"]: item for item in (dataset[i] for i in range(len(dataset)))}
    assert sorted(items) == ["deep", "good", "gray", "rgba"]
    assert all(item["A"].shape == (3, 20, 20) for item in items.values())
    assert pixel(items["gray"]["A"]) == 77 and torch.equal(items["gray"]["A"][0], items["gray"]["A"][2])
    assert torch.equal(items["rgba"]["A"], items["good"]["A"]) and bool((items["rgba"]["B"] == 1).all())
    assert bool((items["deep"]["A"] == 1).all())
    assert torch.allclose(items["good"]["A"][:, 0, 0], torch.tensor([200, 10, 10]) / 127.5 - 1)  # RGB, not BGR


def test_read_rgb_reports_why_a_file_is_unusable(tmp_path):
    (tmp_path / "float.tiff").parent.mkdir(exist_ok=True)
    cv2.imwrite(str(tmp_path / "float.tiff"), np.zeros((20, 20, 3), np.float32))
    with pytest.raises(PocketganError, match="unsupported pixel type float32"):
        read_rgb(tmp_path / "float.tiff")
    with pytest.raises(PocketganError, match="unreadable"):
        read_rgb(tmp_path / "missing.png")


def test_empty_or_missing_splits_are_one_line_errors(tmp_path, cli):
    with pytest.raises(PocketganError, match="not a dataset"):
        open_dataset(tmp_path)
    (tmp_path / "train").mkdir()
    with pytest.raises(PocketganError, match="train: no usable images$"):
        open_dataset(tmp_path)
    (tmp_path / "train" / "broken.png").write_text("x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error says it all: no separate warning
        with pytest.raises(PocketganError, match=r"no usable images \(skipped 1 of 1 files"):
            open_dataset(tmp_path)
    write_unaligned(tmp_path, split="test")
    with pytest.raises(PocketganError, match=r"no 'val' split \(found: train, test\)"):
        open_dataset(tmp_path, split="val")
    (tmp_path / "testB").rename(tmp_path / "elsewhere")
    with pytest.raises(PocketganError, match="split 'test' has no testB/ folder"):
        open_dataset(tmp_path, split="test")
    with pytest.raises(PocketganError, match="direction"):
        open_dataset(tmp_path, direction="sideways")

    result = cli("data", "inspect", tmp_path / "nowhere")
    assert result.code == 2 and result.err == f"error: {tmp_path / 'nowhere'}: no such dataset directory\n"


def test_fingerprint_reads_each_unchanged_file_once(tmp_path, monkeypatch):
    from pocketgan.distill.data import layouts

    write_mirror_pairs(tmp_path, count=4)
    reads = []
    real = layouts.sha256_file
    monkeypatch.setattr(layouts, "sha256_file", lambda path: reads.append(Path(path).name) or real(path))
    first = dataset_fingerprint(tmp_path)
    assert sorted(reads) == ["0.png", "1.png", "2.png", "3.png"]
    assert all(dataset_fingerprint(tmp_path) == first for _ in range(6)) and len(reads) == 4  # memoized

    path = tmp_path / "train" / "1.png"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: read again, same content
    assert dataset_fingerprint(tmp_path) == first and reads[4:] == ["1.png"]
    image = cv2.imread(str(path))
    image[0, 0, 0] ^= 1
    cv2.imwrite(str(path), image)
    assert dataset_fingerprint(tmp_path) != first and reads[5:] == ["1.png"]


def test_fingerprint_follows_image_content_only(tmp_path):
    write_mirror_pairs(tmp_path, count=3)
    before = dataset_fingerprint(tmp_path)
    (tmp_path / "dataset.json").write_text("{}")
    (tmp_path / "train" / "README.txt").write_text("notes")
    assert dataset_fingerprint(tmp_path) == before
    (tmp_path / "train" / "2.png").rename(tmp_path / "train" / "9.png")
    renamed = dataset_fingerprint(tmp_path)
    assert renamed != before
    path = tmp_path / "train" / "0.png"
    image = cv2.imread(str(path))
    image[0, 0, 0] ^= 1
    cv2.imwrite(str(path), image)
    assert dataset_fingerprint(tmp_path) not in (before, renamed)
