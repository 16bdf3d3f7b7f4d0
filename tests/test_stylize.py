"""The photos2stylized builder and its filter: deterministic, honest split, target = stylize(input) exactly."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pocketgan.core.errors import PocketganError
from pocketgan.distill.data import build_dataset, list_builders
from pocketgan.distill.data.stylize import stylize


def build(out: Path, seed: int = 0, count: int = 10, **options) -> Path:
    return build_dataset("photos2stylized", out, size=32, count=count, val_count=4, seed=seed, **options)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("stylized") / "p2s", seed=5)


def halves(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return image[:, : image.shape[1] // 2], image[:, image.shape[1] // 2 :]


def test_stylize_is_deterministic_keeps_shape_and_changes_the_image():
    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8), (0, 0), 2)
    out = stylize(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(out, stylize(photo.copy()))
    assert np.abs(out.astype(int) - photo).mean() > 2  # a visible filter, not the identity


def test_stylize_refuses_what_is_not_uint8_rgb():
    with pytest.raises(PocketganError, match="uint8 H×W×3"):
        stylize(np.zeros((8, 8), np.uint8))
    with pytest.raises(PocketganError, match="uint8 H×W×3"):
        stylize(np.zeros((8, 8, 3), np.float32))


def test_builder_is_registered_and_uses_both_libraries_photos(tiny):
    assert "photos2stylized" in list_builders()
    meta = json.loads((tiny / "dataset.json").read_text())
    origins = {source["origin"].split("/")[0] for source in meta["sources"]}
    assert origins == {"skimage.data", "sklearn.datasets"}
    assert {s["name"] for s in meta["sources"]} >= {"astronaut", "china", "flower"}
    assert meta["counts"] == {"train": 10, "val": 4} and meta["size"] == 32


def test_target_is_exactly_the_stylized_input(tiny):
    for split in ("train", "val"):
        for path in sorted((tiny / split).glob("*.png"))[:3]:
            photo, target = halves(path)
            assert np.array_equal(target, stylize(photo)), path.name


def test_input_is_the_recorded_crop_of_the_real_photograph(tiny):
    from sklearn.datasets import load_sample_images

    sample = load_sample_images()
    sklearn = {Path(name).name: image for name, image in zip(sample.filenames, sample.images)}
    crops = json.loads((tiny / "crops.json").read_text())
    china = [c for c in crops["train"] + crops["val"] if c["photo"] in ("china", "flower")]
    assert china, "the sklearn photos are used"
    for crop in china:
        photo = sklearn[f"{crop['photo']}.jpg"]
        x, y, side = crop["x"], crop["y"], crop["side"]
        expected = cv2.resize(photo[y : y + side, x : x + side], (32, 32), interpolation=cv2.INTER_AREA)
        expected = expected[:, ::-1] if crop["flip"] else expected
        assert np.abs(halves(tiny / crop["file"])[0].astype(int) - expected).max() <= 1


def test_same_seed_same_bytes_other_seed_other_crops(tmp_path, tiny):
    again = build(tmp_path / "again", seed=5)
    other = build(tmp_path / "other", seed=6)
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*.png"))
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.png"))
    assert all((tiny / f).read_bytes() == (again / f).read_bytes() for f in files)
    assert any((tiny / f).read_bytes() != (other / f).read_bytes() for f in files)


def test_train_and_val_crops_lie_in_disjoint_regions(tiny):
    meta = json.loads((tiny / "dataset.json").read_text())
    sources = {s["name"]: s for s in meta["sources"]}
    for source in sources.values():
        train, val = (source["regions"][s] for s in ("train", "val"))
        assert min(train[2], val[2]) <= max(train[0], val[0]) or min(train[3], val[3]) <= max(train[1], val[1])
    crops = json.loads((tiny / "crops.json").read_text())
    for split in ("train", "val"):
        for crop in crops[split]:
            x0, y0, x1, y1 = sources[crop["photo"]]["regions"][split]
            assert x0 <= crop["x"] and crop["x"] + crop["side"] <= x1
            assert y0 <= crop["y"] and crop["y"] + crop["side"] <= y1


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, cli):
    with pytest.raises(PocketganError, match="photos2stylized needs size ≥ 16"):
        build_dataset("photos2stylized", tmp_path / "a", size=8, count=2, val_count=1)
    result = cli("data", "photos2stylized", "-o", tmp_path / "b", "--option", f"photos={tmp_path / 'none'}",
                 "--size", "32", "--count", "2", "--val-count", "1", "--no-progress")  # fmt: skip
    assert result.code == 2 and result.err.startswith("error: ") and result.err.count("\n") == 1
    assert "no such directory" in result.err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_copy_baseline_row_scores_the_input_itself_against_the_ground_truth(tiny):
    from pocketgan.distill.data import open_dataset
    from pocketgan.pipeline.reporting import COPY_BASELINE, copy_baseline_row
    from pocketgan.report import markdown_table, table_rows

    row = copy_baseline_row(open_dataset(tiny, split="val"), batch=3)
    pairs = [halves(path) for path in sorted((tiny / "val").glob("*.png"))]
    mse = [np.mean((a.astype(np.float64) - b) ** 2) for a, b in pairs]
    expected = np.mean([10 * np.log10(255.0**2 / m) for m in mse])
    assert row["model"] == COPY_BASELINE and row["eval_n"] == 4
    assert row["psnr"] == pytest.approx(expected, abs=1e-3)
    assert 0 < row["ssim"] < 1
    assert json.loads((tiny / "dataset.json").read_text())["same_domain"] is True
    results = {"models": [{"model": "teacher"}, {"model": "student"}], "baselines": [row]}
    assert [r["model"] for r in table_rows(results)] == ["teacher", COPY_BASELINE, "student"]
    line = next(line for line in markdown_table(table_rows(results)).splitlines() if COPY_BASELINE in line)
    assert f"{row['psnr']:.2f}" in line


def test_the_default_recipes_students_are_at_least_30x_cheaper_than_its_teacher():
    from pocketgan.config import load_config
    from pocketgan.models import load_model
    from pocketgan.models.profile import profile_model

    config = load_config()
    assert config.data.builder == "photos2stylized"
    shape = (1, 3, config.size, config.size)
    teacher = profile_model(load_model(config.teacher.arch).model, shape).macs
    for student in config.students:
        assert teacher / profile_model(load_model(student.student).model, shape).macs >= 30, student.name
