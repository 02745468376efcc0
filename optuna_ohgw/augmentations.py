"""Augmentations whose strength is a differentiable hyperparameter.

Training and the look-ahead probe apply the same augmentation, so the hypergradient with respect
to the magnitude describes what training actually does. Random draws come from an explicit
generator: for a fixed generator state the output is a smooth function of the magnitude.
"""

from __future__ import annotations

import abc

import torch
import torch.nn.functional as F


class BaseAugmentation(abc.ABC):
    """``aug(x, magnitude, generator) -> x'``, differentiable in ``magnitude``."""

    @abc.abstractmethod
    def __call__(
        self,
        x: torch.Tensor,
        magnitude: torch.Tensor | float,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Augment the batch ``x`` with strength ``magnitude``."""


def _uniform(
    shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor
) -> torch.Tensor:
    """U(-1, 1) draws on the CPU generator, moved to ``like``'s device and dtype."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64) * 2.0 - 1.0
    return u.to(device=like.device, dtype=like.dtype)


class RandomTranslate(BaseAugmentation):
    """Sub-pixel random translation by up to ``magnitude`` pixels per axis, plus optional flips.

    Works on 1D signals ``(N, C, L)`` and images ``(N, C, H, W)``. Each sample moves by
    ``magnitude * u`` pixels with ``u ~ U(-1, 1)`` per axis, resampled bilinearly with zero
    padding: ``magnitude = 4`` matches the usual pad-4 random crop, but unlike a crop it is a
    continuous function of the magnitude. Flips (images: horizontal; signals: none unless asked)
    are drawn from the same generator and do not depend on the magnitude.
    """

    def __init__(self, flip: bool = False) -> None:
        self.flip = flip

    def __call__(
        self,
        x: torch.Tensor,
        magnitude: torch.Tensor | float,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        if x.dim() not in (3, 4):
            raise ValueError(f"RandomTranslate expects (N,C,L) or (N,C,H,W), got {tuple(x.shape)}")
        one_d = x.dim() == 3
        img = x.unsqueeze(2) if one_d else x
        n, _, h, w = img.shape
        m = torch.as_tensor(magnitude, dtype=img.dtype, device=img.device)
        u = _uniform((n, 2), generator, img)
        tx = m * u[:, 0] * (2.0 / w)
        ty = torch.zeros_like(tx) if one_d else m * u[:, 1] * (2.0 / h)
        ones, zeros = torch.ones_like(tx), torch.zeros_like(tx)
        theta = torch.stack(
            [torch.stack([ones, zeros, tx], dim=1), torch.stack([zeros, ones, ty], dim=1)], dim=1
        )
        grid = F.affine_grid(theta, list(img.shape), align_corners=False)
        out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.flip:
            flips = torch.rand((n,), generator=generator) < 0.5
            flips = flips.to(out.device).view(n, 1, 1, 1)
            out = torch.where(flips, out.flip(-1), out)
        return out.squeeze(2) if one_d else out


class GaussianNoise(BaseAugmentation):
    """Additive Gaussian noise with standard deviation ``magnitude`` (any input shape)."""

    def __call__(
        self,
        x: torch.Tensor,
        magnitude: torch.Tensor | float,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float64)
        noise = noise.to(device=x.device, dtype=x.dtype)
        return x + torch.as_tensor(magnitude, dtype=x.dtype, device=x.device) * noise
