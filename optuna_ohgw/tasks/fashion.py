"""Fashion-MNIST (Xiao et al., 2017) from Debian's ``dataset-fashion-mnist`` package, with a
small strided CNN.

``apt-get install dataset-fashion-mnist`` puts the four official IDX files (gzipped) in
:data:`DEBIAN_DIR`; ``--data-dir`` points at any other folder with the same files, gzipped or
not. The files are unpacked once into a cache folder by torchvision's ``extract_archive`` and
read by torchvision's own IDX reader (``torchvision.datasets.mnist.read_image_file`` /
``read_label_file``).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import torch
from torch import nn

from optuna_ohgw.augmentations import BaseAugmentation, RandomTranslate
from optuna_ohgw.tasks._base import BaseTask, Splits, split_indices
from optuna_ohgw.tasks.cifar10 import DatasetMissingError
from optuna_ohgw.tasks.models import StridedCNN2d

DEBIAN_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the IDX files."""
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
N_TRAIN = 10_000
N_VAL = 2_000
SUBSET_SEED = 0
"""The fixed subset: the first ``N_TRAIN + N_VAL`` images of the official 60,000-image training
file after a permutation seeded by ``SUBSET_SEED`` (the same 12,000 images for every study);
each study seed then cuts them into ``N_TRAIN`` train / ``N_VAL`` validation images. The test
split is the official 10,000-image test file."""
_MEAN, _STD = 0.2860, 0.3530  # the official training images' pixel mean and std (in [0, 1])


def _cache_dir() -> pathlib.Path:
    root = os.environ.get("XDG_CACHE_HOME", str(pathlib.Path.home() / ".cache"))
    return pathlib.Path(root) / "optuna-ohgw" / "fashion-mnist"


class FashionMNISTTask(BaseTask):
    """Fashion-MNIST, a fixed 12,000-image subset of the training file cut 10,000 / 2,000 into
    train / validation per seed, the official 10,000-image test set; a three-layer strided CNN
    (19k parameters, about 1-2 s per epoch on one core); translation up to ``m`` pixels and
    horizontal flips."""

    name = "fashion"
    batch_size = 128

    def __init__(self, *, n_train: int = N_TRAIN, n_val: int = N_VAL, **kwargs: Any) -> None:
        """``n_train`` / ``n_val``: the subset's size (smaller for tests); the other keyword
        arguments are :class:`BaseTask`'s."""
        super().__init__(**kwargs)
        if n_train < 1 or n_val < 1:
            raise ValueError(f"n_train and n_val must be positive, got {n_train}, {n_val}.")
        self.n_train = n_train
        self.n_val = n_val

    @property
    def root(self) -> pathlib.Path:
        return pathlib.Path(self.data_dir) if self.data_dir else DEBIAN_DIR

    def _file(self, key: str) -> pathlib.Path | None:
        for name in (FILES[key], FILES[key] + ".gz"):
            if (self.root / name).is_file():
                return self.root / name
        return None

    def check_data(self) -> None:
        missing = [FILES[k] for k in FILES if self._file(k) is None]
        if missing:
            raise DatasetMissingError(
                f"Fashion-MNIST not found in {self.root}: install it with "
                "'apt-get install dataset-fashion-mnist' (puts it in "
                f"{DEBIAN_DIR}) or point --data-dir at a folder with {', '.join(missing)}[.gz]"
            )

    def _read(self, key: str) -> torch.Tensor:
        from torchvision.datasets.mnist import read_image_file, read_label_file
        from torchvision.datasets.utils import extract_archive

        path = self._file(key)
        assert path is not None
        if path.suffix == ".gz":
            unpacked = _cache_dir() / FILES[key]
            if not unpacked.is_file() or unpacked.stat().st_mtime < path.stat().st_mtime:
                unpacked.parent.mkdir(parents=True, exist_ok=True)
                tmp = unpacked.parent / f".tmp-{os.getpid()}"  # then renamed: atomic
                tmp.mkdir(exist_ok=True)
                out = pathlib.Path(extract_archive(str(path), str(tmp)))
                os.replace(out, unpacked)
                tmp.rmdir()
            path = unpacked
        reader = read_image_file if key.endswith("images") else read_label_file
        try:
            return reader(str(path))
        except (AssertionError, ValueError, RuntimeError, KeyError) as err:
            raise DatasetMissingError(
                f"Fashion-MNIST file {path} is unreadable ({type(err).__name__}); reinstall "
                "dataset-fashion-mnist or replace the file with the official one"
            ) from None

    def load(self, seed: int) -> Splits:
        self.check_data()
        x_all, y_all = self._read("train_images"), self._read("train_labels")
        subset = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(SUBSET_SEED))
        n = self.n_train + self.n_val
        if n > len(y_all):
            raise ValueError(f"n_train + n_val = {n} exceeds the {len(y_all)} training images.")
        x, y = self._images(x_all[subset[:n]]), y_all[subset[:n]].long()
        train, val = split_indices(n, (self.n_train / n, self.n_val / n), seed)
        x_test = self._images(self._read("test_images"))
        y_test = self._read("test_labels").long()
        return Splits((x[train], y[train]), (x[val], y[val]), (x_test, y_test))

    @staticmethod
    def _images(raw: torch.Tensor) -> torch.Tensor:
        return ((raw.float() / 255.0 - _MEAN) / _STD).unsqueeze(1)

    def build_model(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return StridedCNN2d(n_classes=10, in_channels=1, width=16, batch_norm=True)

    @property
    def augmentation(self) -> BaseAugmentation:
        return RandomTranslate(flip=True)
