"""One preprocessing path: the reader, resize and normalization that training, calibration and the runtime share."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import get_args

import cv2
import numpy as np
import pytest
import torch

from pocketgan import imaging
from pocketgan.core.contract import Interpolation, IOSpec, TensorInfo
from pocketgan.core.errors import PocketganError
from pocketgan.distill.data import open_dataset
from pocketgan.export.samples import read_calibration_images
from pocketgan.runtime.runner import Runner, RunnerInfo


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def pix2pix_tensor(image: np.ndarray) -> torch.Tensor:
    """pix2pix's normalization as pocketgan trained with it before imaging existed: ``x / 127.5 - 1`` in torch."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


class IdentityRunner(Runner):
    """A runner whose model returns its input, recording every batch it was fed."""

    def __init__(self, io: IOSpec, size: int) -> None:
        shape: list[int | str] = [1, io.input_channels, size, size]
        tensors = ([TensorInfo("input", shape)], [TensorInfo("output", shape)])
        super().__init__(RunnerInfo("identity", "test", *tensors, providers=[], io=io))
        self.fed: list[np.ndarray] = []

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.fed.append(batch.copy())
        return batch


# --------------------------------------------------------------------------- the reader


def test_reader_converts_gray_alpha_and_16_bit_and_returns_rgb(tmp_path):
    cv2.imwrite(str(tmp_path / "bgr.png"), np.full((4, 6, 3), (10, 20, 30), np.uint8))  # OpenCV writes BGR
    assert imaging.read_rgb(tmp_path / "bgr.png")[0, 0].tolist() == [30, 20, 10]
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((4, 6), 77, np.uint8))
    gray = imaging.read_rgb(tmp_path / "gray.png")
    assert gray.shape == (4, 6, 3) and (gray == 77).all()
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = (0, 0, 200)  # red in BGR order
    rgba[:, :3, 3] = 255  # left half opaque, right half transparent → white
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    out = imaging.read_rgb(tmp_path / "rgba.png")
    assert out[0, 0].tolist() == [200, 0, 0] and out[0, 5].tolist() == [255, 255, 255]
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((4, 6), 32896, np.uint16))  # 32896 / 65535 * 255 = 128.0
    assert (imaging.read_rgb(tmp_path / "deep.png") == 128).all()


def test_reader_says_why_a_file_is_unusable(tmp_path):
    data = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "fake.png").write_text("not an image")
    cv2.imwrite(str(tmp_path / "float.tiff"), np.zeros((4, 4, 3), np.float32))
    for name, reason in (("cut.png", "^truncated$"), ("fake.png", "not a decodable image"),
                         ("float.tiff", "unsupported pixel type float32"), ("missing.png", "^unreadable")):  # fmt: skip
        with pytest.raises(imaging.ImageError, match=reason):
            imaging.read_rgb(tmp_path / name)


# --------------------------------------------------------------------------- resize and normalization


def test_every_interpolation_of_the_contract_has_opencv_flags():
    assert set(imaging.INTERPOLATIONS) == set(get_args(Interpolation))
    for shrink, enlarge in imaging.INTERPOLATIONS.values():
        assert isinstance(getattr(cv2, shrink), int) and isinstance(getattr(cv2, enlarge), int)


def test_resize_uses_the_named_filter_and_is_a_no_op_at_the_same_size():
    image = np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    assert imaging.resize(image, 40, 52) is image
    area, cubic = cv2.resize(image, (23, 17), interpolation=cv2.INTER_AREA), cv2.resize(image, (70, 60), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(imaging.resize(image, 17, 23), area)  # shrinking: area averaging
    np.testing.assert_array_equal(imaging.resize(image, 60, 70), cubic)  # enlarging: bicubic
    linear = imaging.resize(image, 17, 23, "linear")
    np.testing.assert_array_equal(linear, cv2.resize(image, (23, 17), interpolation=cv2.INTER_LINEAR))
    assert not np.array_equal(linear, imaging.resize(image, 17, 23, "area"))
    gray = image[:, :, :1]
    assert imaging.resize(gray, 17, 23).shape == (17, 23, 1)  # OpenCV drops a single channel axis; we keep it
    with pytest.raises(PocketganError, match="unknown interpolation 'bilinear'"):
        imaging.resize(image, 17, 23, "bilinear")


def test_normalize_is_pix2pix_bit_for_bit_and_round_trips_in_any_spec():
    image = np.random.default_rng(1).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    image[0, 0], image[0, 1] = 0, 255
    assert torch.equal(torch.from_numpy(imaging.normalize(image, IOSpec())), pix2pix_tensor(image))
    for io in (IOSpec(), IOSpec.from_value_range(0, 1), IOSpec(channel_order="BGR"), IOSpec(scale=0.5, offset=3.0)):
        tensor = imaging.normalize(image, io)
        assert tensor.shape == (3, 6, 10) and tensor.dtype == np.float32
        low, high = io.value_range
        assert tensor.min() == low and tensor.max() == high  # pixel 0 → low, 255 → high exactly
        np.testing.assert_array_equal(imaging.denormalize(tensor, io), image)
    bgr = imaging.normalize(image, IOSpec.from_value_range(0, 1, channel_order="BGR"))
    np.testing.assert_allclose(bgr[0], image[:, :, 2] / 255.0, atol=1e-7)  # blue first
    clipped = imaging.denormalize(np.full((3, 2, 2), 7.0, np.float32), IOSpec())
    assert (clipped == 255).all()


def test_gray_models_get_luma():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 200  # pure green: luma 0.587 * 200 = 117.4
    tensor = imaging.prepare(rgb, IOSpec(input_channels=1, output_channels=1), (4, 4))
    assert tensor.shape == (1, 4, 4) and round(float((tensor[0, 0, 0] + 1) * 127.5)) == 117


def test_imaging_imports_no_torch():
    code = "import sys, pocketgan.imaging; print(sorted({'torch', 'pocketgan.distill', 'pocketgan.models'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


# --------------------------------------------------------------------------- the same numbers everywhere


def write_aligned(root: Path, count: int = 3, side: int = 40) -> list[np.ndarray]:
    """``root/train/i.png``: A = random noise, B = a flat bright colour (very different halves); returns the A's."""
    rng = np.random.default_rng(5)
    inputs = []
    for i in range(count):
        a = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        b = np.full((side, side, 3), (250, 240, 230), np.uint8)
        write_rgb(root / "train" / f"{i}.png", np.concatenate([a, b], axis=1))
        inputs.append(a)
    return inputs


@pytest.mark.parametrize("size", [40, 32])  # native size (no resize) and a downscale
def test_training_calibration_and_runtime_feed_the_model_identical_arrays(tmp_path, size):
    inputs = write_aligned(tmp_path)
    io = IOSpec()
    training = [open_dataset(tmp_path, split="train", size=size)[i]["A"].numpy() for i in range(3)]
    calibration = read_calibration_images(tmp_path, io, (size, size), limit=3).numpy()
    runner = IdentityRunner(io, size)
    for path in sorted((tmp_path / "train").glob("*.png")):
        runner.translate(imaging.aligned_halves(imaging.read_rgb(path))[0])
    runtime = [batch[0] for batch in runner.fed]

    for a, train, calib, run in zip(inputs, training, calibration, runtime):
        expected = pix2pix_tensor(cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA) if size != 40 else a)
        np.testing.assert_array_equal(train, expected.numpy())
        np.testing.assert_array_equal(calib, train)
        np.testing.assert_array_equal(run, train)


def test_translate_resizes_in_and_out_with_the_spec_interpolation():
    image = np.random.default_rng(4).integers(0, 256, (37, 50, 3), dtype=np.uint8)
    filters = (("area", cv2.INTER_AREA, cv2.INTER_CUBIC), ("linear", cv2.INTER_LINEAR, cv2.INTER_LINEAR))
    for name, shrink, enlarge in filters:
        io = IOSpec(interpolation=name)
        out = IdentityRunner(io, 32).translate(image)
        small = cv2.resize(image, (32, 32), interpolation=shrink)
        np.testing.assert_array_equal(out, cv2.resize(small, (50, 37), interpolation=enlarge))


# --------------------------------------------------------------------------- calibration reads generator inputs


def test_calibration_on_an_aligned_dataset_reads_the_a_halves(tmp_path):
    inputs = write_aligned(tmp_path, count=4)
    expected = torch.stack([pix2pix_tensor(a) for a in inputs])
    for folder in (tmp_path, tmp_path / "train"):  # the dataset root or its split folder
        batch = read_calibration_images(folder, IOSpec(), (40, 40), limit=4)
        assert batch.shape == (4, 3, 40, 40)
        assert torch.equal(batch, expected)  # the A halves, not the A|B composites squeezed to 40×40
    composite = imaging.read_rgb(tmp_path / "train" / "0.png")
    squeezed = pix2pix_tensor(cv2.resize(composite, (40, 40), interpolation=cv2.INTER_AREA))
    assert float((batch[0] - squeezed).abs().mean()) > 0.3  # what calibrating on composites would have seen

    (tmp_path / "dataset.json").write_text(json.dumps({"direction": "BtoA"}))  # B is the generator's input
    flipped = read_calibration_images(tmp_path, IOSpec(), (40, 40), limit=4)
    assert torch.equal(flipped[0, :, 0, 0], torch.tensor([250, 240, 230]) / 127.5 - 1)


def test_calibration_on_an_unaligned_dataset_reads_train_a(tmp_path):
    write_rgb(tmp_path / "trainA" / "a.png", np.full((24, 24, 3), 10, np.uint8))
    write_rgb(tmp_path / "trainB" / "b.png", np.full((24, 24, 3), 240, np.uint8))
    batch = read_calibration_images(tmp_path, IOSpec(), (16, 16), limit=4)
    assert batch.shape == (1, 3, 16, 16) and torch.equal(batch, torch.full((1, 3, 16, 16), 10 / 127.5 - 1))


def test_a_plain_folder_gives_every_image_under_it(tmp_path):
    write_rgb(tmp_path / "x.png", np.zeros((8, 8, 3), np.uint8))
    write_rgb(tmp_path / "deeper" / "y.jpg", np.zeros((8, 8, 3), np.uint8))
    write_rgb(tmp_path / ".hidden" / "z.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("no")
    source = imaging.input_images(tmp_path)
    assert source.half is None
    assert [p.relative_to(tmp_path).as_posix() for p in source.files] == ["deeper/y.jpg", "x.png"]
