"""CIFAR-10 read by torchvision from a local folder, with ResNet-20."""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import torch
from torch import nn

from optuna_ohgw.augmentations import BaseAugmentation, RandomTranslate
from optuna_ohgw.tasks._base import BaseTask, Splits, split_indices
from optuna_ohgw.tasks.models import ResNet20

_MEAN = (0.4914, 0.4822, 0.4465)
_STD = (0.2470, 0.2435, 0.2616)


class DatasetMissingError(FileNotFoundError):
    """The dataset folder is not where the study looks for it."""


def _local_cifar10() -> type:
    """torchvision's ``CIFAR10`` reader, accepting any folder with the official files.

    torchvision checks each batch file against the official MD5 sum; this subclass only checks
    that the files exist, so a folder in the same format (re-packed, or generated for tests) is
    read by the same code. Downloads still go through torchvision's verified path.
    """
    from torchvision.datasets import CIFAR10

    class LocalCIFAR10(CIFAR10):
        def _check_integrity(self) -> bool:
            folder = pathlib.Path(self.root) / self.base_folder
            return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            path = pathlib.Path(self.root) / self.base_folder / self.meta["filename"]
            with open(path, "rb") as f:
                data = pickle.load(f, encoding="latin1")
            self.classes = data[self.meta["key"]]
            self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    return LocalCIFAR10


class CIFAR10Task(BaseTask):
    """CIFAR-10: 45k/5k train/validation per seed, the official 10k test set; ResNet-20.

    The whole dataset and the augmentation (sub-pixel translation up to ``m`` pixels, m = 4 being
    the usual pad-4 crop, plus horizontal flips) live on the task's device, so on a GPU no
    data-loader process is the bottleneck. Nothing is downloaded unless ``download=True``.
    """

    name = "cifar10"
    batch_size = 128

    @property
    def root(self) -> pathlib.Path:
        return pathlib.Path(self.data_dir or "data")

    def check_data(self) -> None:
        if not self.download and not (self.root / "cifar-10-batches-py").is_dir():
            raise self._missing()

    def _missing(self) -> DatasetMissingError:
        return DatasetMissingError(
            f"CIFAR-10 not found in {self.root.resolve()}: put the official "
            "'cifar-10-batches-py' folder there (or point --data-dir at its parent), "
            "or pass --download"
        )

    def load(self, seed: int) -> Splits:
        root = self.root
        self.check_data()
        reader = _local_cifar10()
        try:
            train = reader(str(root), train=True, download=self.download)
            test = reader(str(root), train=False, download=self.download)
        except RuntimeError as err:
            raise self._missing() from err
        except (OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as err:
            raise DatasetMissingError(
                f"CIFAR-10 in {(root / 'cifar-10-batches-py').resolve()} is unreadable "
                f"({type(err).__name__}: {err}); replace it with the official folder "
                "(or delete it and pass --download)"
            ) from None
        x, y = self._tensors(train.data, train.targets)
        x_test, y_test = self._tensors(test.data, test.targets)
        tr, val = split_indices(len(y), (0.9, 0.1), seed)
        return Splits((x[tr], y[tr]), (x[val], y[val]), (x_test, y_test))

    @staticmethod
    def _tensors(images: np.ndarray, labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor(images, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
        mean = torch.tensor(_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(_STD).view(1, 3, 1, 1)
        return (x - mean) / std, torch.tensor(labels, dtype=torch.long)

    def build_model(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return ResNet20(n_classes=10)

    @property
    def augmentation(self) -> BaseAugmentation:
        return RandomTranslate(flip=True)
