"""scikit-learn's digits (1,797 8x8 images) with a small 2D CNN: the fastest task."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn

from optuna_ohgw.augmentations import BaseAugmentation, RandomTranslate
from optuna_ohgw.tasks._base import BaseTask, Splits, split_indices
from optuna_ohgw.tasks.models import SmallCNN2d


class DigitsTask(BaseTask):
    """Digits, split 60/20/20 into train/validation/test per seed; translation up to m pixels."""

    name = "digits"
    batch_size = 64

    def load(self, seed: int) -> Splits:
        x_np, y_np = load_digits(return_X_y=True)
        x = torch.tensor(x_np / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
        x = (x - x.mean()) / x.std()
        y = torch.tensor(y_np, dtype=torch.long)
        train, val, test = split_indices(len(y), (0.6, 0.2, 0.2), seed)
        return Splits((x[train], y[train]), (x[val], y[val]), (x[test], y[test]))

    def build_model(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return SmallCNN2d(n_classes=10, in_channels=1, width=16, batch_norm=True)

    @property
    def augmentation(self) -> BaseAugmentation:
        return RandomTranslate(flip=False)
