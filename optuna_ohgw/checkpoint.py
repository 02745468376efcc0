"""Checkpoints of paused trials: one file per configuration, written atomically."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that should exist is missing or unreadable; the segment fails, loudly."""


class CheckpointStore:
    """Saves and loads the training state of paused configurations under ``root/study/``.

    A configuration keeps one file (``config-<number>.pt``), overwritten at each pause and
    deleted when the configuration can no longer be resumed. Writes go to a temporary file that
    is renamed into place, so a worker killed mid-write never leaves a half-written checkpoint.
    """

    def __init__(self, root: str | pathlib.Path, study_name: str) -> None:
        self.folder = pathlib.Path(root) / study_name

    def path(self, config: int) -> pathlib.Path:
        return self.folder / f"config-{config}.pt"

    def save(self, config: int, state: dict[str, Any]) -> pathlib.Path:
        path = self.path(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    def load(self, config: int) -> dict[str, Any]:
        path = self.path(config)
        if not path.exists():
            raise CheckpointError(
                f"checkpoint of configuration {config} is missing ({path}); the segment fails "
                "instead of silently restarting from scratch"
            )
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - any unreadable file is the same problem
            raise CheckpointError(
                f"checkpoint of configuration {config} is corrupt ({path}: {type(err).__name__})"
            ) from None

    def delete(self, config: int) -> None:
        self.path(config).unlink(missing_ok=True)
