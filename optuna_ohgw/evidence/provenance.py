"""Which code and which machine ran a bench cell, recorded on the cell's study.

A report names the commit behind every figure, so each cell records it when it finishes
(:data:`~optuna_ohgw.evidence.grid.CODE_ATTR`), with the machine in words and its wall time. The
machine is described by its kind (architecture, cores, accelerator, library versions), never by
its host name or a path, so that committed journals say nothing about who ran them.
"""

from __future__ import annotations

import os
import pathlib
import platform
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
"""The tree that holds the ``optuna_ohgw`` package (a checkout, a frozen copy, site-packages)."""


def code_version(root: pathlib.Path = ROOT) -> str:
    """The commit of the code that runs: the ``COMMIT`` file of a frozen tree
    (``benchmarks/freeze_code.sh`` writes it), else the git commit of the checkout holding the
    package, with ``+dirty`` when tracked files differ from it, else the installed version."""
    frozen = root / "COMMIT"
    if frozen.is_file():
        return frozen.read_text().strip()
    if (root / ".git").exists():
        try:
            git = ["git", "-C", str(root)]
            commit = _run([*git, "rev-parse", "HEAD"])
            dirty = _run([*git, "status", "--porcelain", "--untracked-files=no"])
            return commit + ("+dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"optuna-ohgw {version('optuna-ohgw')}"
    except PackageNotFoundError:
        return "unknown"


def machine() -> str:
    """The machine in words: architecture, cores, accelerator, Python and torch versions."""
    parts = [f"{platform.machine()}, {os.cpu_count()} cores"]
    try:
        import torch

        if torch.cuda.is_available():
            parts.append(torch.cuda.get_device_name(0))
        parts.append(f"Python {platform.python_version()}, torch {torch.__version__}")
    except ImportError:  # pragma: no cover - torch is a dependency
        parts.append(f"Python {platform.python_version()}")
    return ", ".join(parts)


def short(commit: str) -> str:
    """A commit as tables show it: 7 hex digits, keeping a ``+dirty`` mark."""
    head, plus, rest = commit.partition("+")
    if len(head) == 40 and all(ch in "0123456789abcdef" for ch in head):
        head = head[:7]
    return head + plus + rest


def _run(args: list[str]) -> str:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
