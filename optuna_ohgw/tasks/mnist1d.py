"""MNIST-1D (Greydanus, 2020), generated offline by the ``mnist1d`` package, with a 1D CNN."""

from __future__ import annotations

import os
import pathlib
import random

import numpy as np
import torch
from torch import nn

from optuna_ohgw.augmentations import BaseAugmentation, RandomTranslate
from optuna_ohgw.tasks._base import BaseTask, Splits, split_indices
from optuna_ohgw.tasks.models import SmallCNN1d

N_SAMPLES = 10_000
"""Generated samples: 8,000 for train + validation, 2,000 for test (the package's 80/20 cut)."""
DATA_SEED = 42
"""The package's default generator seed: every study sees the same dataset."""


def _cache_dir(data_dir: str | None) -> pathlib.Path:
    if data_dir is not None:
        return pathlib.Path(data_dir)
    root = os.environ.get("XDG_CACHE_HOME", str(pathlib.Path.home() / ".cache"))
    return pathlib.Path(root) / "optuna-ohgw"


def generate_mnist1d(data_dir: str | None = None) -> dict[str, np.ndarray]:
    """Generate MNIST-1D offline once and cache the arrays as ``.npz``."""
    path = _cache_dir(data_dir) / f"mnist1d-{N_SAMPLES}-{DATA_SEED}.npz"
    if path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = N_SAMPLES
    args.seed = DATA_SEED
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:  # the generator reseeds Python's and NumPy's global RNGs: restore them
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
    arrays = {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


class MNIST1DTask(BaseTask):
    """MNIST-1D: 40-sample signals, 10 classes; train/validation 80/20 per seed, fixed test."""

    name = "mnist1d"
    batch_size = 128

    def load(self, seed: int) -> Splits:
        data = generate_mnist1d(self.data_dir)
        x = torch.tensor(data["x"], dtype=torch.float32).unsqueeze(1)
        y = torch.tensor(data["y"], dtype=torch.long)
        x_test = torch.tensor(data["x_test"], dtype=torch.float32).unsqueeze(1)
        y_test = torch.tensor(data["y_test"], dtype=torch.long)
        train, val = split_indices(len(y), (0.8, 0.2), seed)
        return Splits((x[train], y[train]), (x[val], y[val]), (x_test, y_test))

    def build_model(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return SmallCNN1d(n_classes=10, width=32, batch_norm=True)

    @property
    def augmentation(self) -> BaseAugmentation:
        return RandomTranslate(flip=False)
