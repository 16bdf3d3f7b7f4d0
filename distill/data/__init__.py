"""Datasets: the pix2pix aligned and CycleGAN unaligned loaders, fingerprints, and embedded builders.

>>> dataset = open_dataset("data/edges2photos", split="train", size=64, augment=True, seed=0)
>>> dataset.set_epoch(3); item = dataset[0]   # {"A", "B": 3×64×64 in [-1, 1], "name"}
>>> build_dataset("edges2photos", "data/edges2photos", size=64, count=600, val_count=64)
"""

from pocketgan.distill.data.builders import (
    DatasetBuilder,
    build_dataset,
    get_builder,
    list_builders,
    register_builder,
    write_aligned_dataset,
)
from pocketgan.distill.data.datasets import AlignedDataset, PairedImageDataset, UnalignedDataset, open_dataset
from pocketgan.distill.data.images import DatasetWarning, read_rgb, scan_images
from pocketgan.distill.data.inspect import DatasetSummary, describe_dataset
from pocketgan.distill.data.layouts import available_splits, dataset_fingerprint, read_dataset_json

__all__ = [
    "AlignedDataset",
    "DatasetBuilder",
    "DatasetSummary",
    "DatasetWarning",
    "PairedImageDataset",
    "UnalignedDataset",
    "available_splits",
    "build_dataset",
    "dataset_fingerprint",
    "describe_dataset",
    "get_builder",
    "list_builders",
    "open_dataset",
    "read_dataset_json",
    "read_rgb",
    "register_builder",
    "scan_images",
    "write_aligned_dataset",
]
