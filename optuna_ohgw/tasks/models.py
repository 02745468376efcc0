"""Small image and signal classifiers for the benchmark tasks.

Every builder takes an ``activation`` factory (``nn.ReLU`` by default) so that tests can swap in a
smooth one (``nn.Tanh``, ``nn.SiLU``, ``nn.Softplus``): a finite difference of the look-ahead
loss is only reliable when the network is differentiable everywhere. The small CNNs downsample by
strided convolutions rather than max pooling for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

ActivationFactory = Callable[[], nn.Module]


def _conv_block(
    conv: nn.Module, channels: int, activation: ActivationFactory, batch_norm: bool, dim: int
) -> list[nn.Module]:
    layers = [conv]
    if batch_norm:
        layers.append(nn.BatchNorm2d(channels) if dim == 2 else nn.BatchNorm1d(channels))
    layers.append(activation())
    return layers


class SmallCNN2d(nn.Module):
    """Two-layer CNN for 8x8 images such as scikit-learn's digits, input ``(N, C, 8, 8)``.

    ``conv3x3(width) -> conv3x3/2(2*width) -> linear``: 9,930 parameters at the defaults.

    Args:
        n_classes: Number of output logits.
        in_channels: Input channels.
        width: Channels of the first convolution; the second has twice as many.
        activation: Factory of the non-linearity.
        batch_norm: Insert BatchNorm after each convolution.
        dropout: Dropout probability before the classifier (0 disables it).
        image_size: Input height and width (must be even).
    """

    def __init__(
        self,
        n_classes: int = 10,
        in_channels: int = 1,
        width: int = 16,
        activation: ActivationFactory = nn.ReLU,
        *,
        batch_norm: bool = False,
        dropout: float = 0.0,
        image_size: int = 8,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_block(
                nn.Conv2d(in_channels, width, 3, padding=1, bias=not batch_norm),
                width,
                activation,
                batch_norm,
                2,
            ),
            *_conv_block(
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=not batch_norm),
                2 * width,
                activation,
                batch_norm,
                2,
            ),
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(2 * width * (image_size // 2) ** 2, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x).flatten(1)))


class SmallCNN1d(nn.Module):
    """Three-layer 1D CNN for MNIST-1D signals, input ``(N, 1, 40)``.

    ``conv5(width) -> conv5/2(width) -> conv5/2(width) -> linear``, in the spirit of the
    MNIST-1D paper's baseline CNN: 13,706 parameters at the defaults.

    Args:
        n_classes: Number of output logits.
        width: Channels of every convolution.
        activation: Factory of the non-linearity.
        batch_norm: Insert BatchNorm after each convolution.
        dropout: Dropout probability before the classifier (0 disables it).
        length: Input signal length (a multiple of 4).
        in_channels: Input channels.
    """

    def __init__(
        self,
        n_classes: int = 10,
        width: int = 32,
        activation: ActivationFactory = nn.ReLU,
        *,
        batch_norm: bool = False,
        dropout: float = 0.0,
        length: int = 40,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, stride in enumerate((1, 2, 2)):
            conv = nn.Conv1d(
                in_channels if i == 0 else width,
                width,
                5,
                stride=stride,
                padding=2,
                bias=not batch_norm,
            )
            layers += _conv_block(conv, width, activation, batch_norm, 1)
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(width * (length // 4), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x).flatten(1)))


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection."""

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int,
        activation: ActivationFactory,
        shortcut: str,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = activation()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = activation()
        self.shortcut: nn.Module = nn.Identity()
        self.pad = 0
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                # Parameter-free: subsample by ``stride`` and zero-pad the new channels.
                self.shortcut = _SubsampleShortcut(stride)
                self.pad = planes - in_planes
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes),
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = self.shortcut(x)
        if self.pad:
            identity = F.pad(identity, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return self.act2(out + identity)


class _SubsampleShortcut(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride]


class ResNet20(nn.Module):
    """ResNet-20 for 32x32 images (He et al., 2016, Section 4.2), input ``(N, C, 32, 32)``.

    A 3x3 stem with 16 channels, then three stages of three basic blocks with 16, 32 and 64
    channels (stride 2 at the start of stages 2 and 3), global average pooling and a linear
    classifier. With the paper's option-A shortcuts (parameter-free subsample and zero-pad) it
    has 269,722 parameters for 10 classes; option B (1x1 projection + BatchNorm) adds 2,752.

    Args:
        n_classes: Number of output logits.
        activation: Factory of the non-linearity.
        shortcut: ``"A"`` (identity with zero padding) or ``"B"`` (projection) where the shape
            changes.
        in_channels: Input channels.
    """

    def __init__(
        self,
        n_classes: int = 10,
        activation: ActivationFactory = nn.ReLU,
        *,
        shortcut: str = "A",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}.")
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.act = activation()
        blocks: list[nn.Module] = []
        in_planes = 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(
                    _BasicBlock(in_planes, planes, stride if i == 0 else 1, activation, shortcut)
                )
                in_planes = planes
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(self.act(self.bn1(self.conv1(x))))
        return self.fc(out.mean(dim=(2, 3)))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class StridedCNN2d(nn.Module):
    """Three stride-2 3x3 convolutions and a linear classifier, for 28x28 images.

    ``conv/2(width) -> conv/2(2*width) -> conv/2(2*width) -> linear`` (28 -> 14 -> 7 -> 4
    pixels): 19,258 parameters at width 16, about a second per 10,000 images on one CPU core.

    Args:
        n_classes: Number of output logits.
        in_channels: Input channels.
        width: Channels of the first convolution; the others have twice as many.
        activation: Factory of the non-linearity.
        batch_norm: Insert BatchNorm after each convolution.
        image_size: Input height and width.
    """

    def __init__(
        self,
        n_classes: int = 10,
        in_channels: int = 1,
        width: int = 16,
        activation: ActivationFactory = nn.ReLU,
        *,
        batch_norm: bool = True,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [in_channels, width, 2 * width, 2 * width]
        size = image_size
        for c_in, c_out in zip(channels, channels[1:]):
            conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=not batch_norm)
            layers += _conv_block(conv, c_out, activation, batch_norm, 2)
            size = (size + 1) // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels[-1] * size * size, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))
