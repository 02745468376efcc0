"""Portable snapshots of a grid's journal: only finished cells, no path of the machine that ran
it. ``reports/`` commits such snapshots; :func:`restore_journal` (or ``sed``) puts them back.

A journal records where things were: each study's source file (``ohgw.study_file``), the
checkpoint folder of a promotion scheduler's study (``ohgw.artifacts``). The snapshot writes
:data:`PLACEHOLDER` where the grid's folder was, and the restore writes the new folder there,
so a resumed grid finds its folders wherever it is restored.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import re
import shutil
import tempfile

PLACEHOLDER = "@GRID@"
"""Stands for the grid's folder (absolute, as the machine that restores it sees it)."""
ABSOLUTE_PATH = re.compile(r"(?<![\w/.~@-])/(?:[\w.+-]+/)+[\w.+-]*")
"""An absolute POSIX path of at least two components (``/work/grids/x``), not the tail of a URL
(``https://...``), a relative path (``a/b``), a ratio (``0.85/0.88``) or a placeholder."""


def absolute_paths(text: str) -> list[str]:
    """The absolute paths in ``text`` (see :data:`ABSOLUTE_PATH`)."""
    return ABSOLUTE_PATH.findall(text)


def scrub(text: str, root: str | os.PathLike[str]) -> str:
    """``text`` with the absolute ``root`` folder (and its real path) written as the
    placeholder."""
    for prefix in {os.path.abspath(root), os.path.realpath(root)}:
        text = text.replace(prefix.rstrip("/"), PLACEHOLDER)
    return text


def snapshot_journal(
    journal: str | os.PathLike[str],
    out: str | os.PathLike[str],
    root: str | os.PathLike[str],
) -> list[str]:
    """Write ``out`` (gzip): ``journal`` without its unfinished cells, ``root`` as the
    placeholder. Returns the finished cells' study names. Raises ``ValueError`` if an absolute
    path outside ``root`` is left (the snapshot would not be portable)."""
    import optuna

    from optuna_ohgw.evidence.grid import DONE_ATTR

    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / "journal"
        shutil.copyfile(journal, copy)
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(copy))
        )
        kept = []
        for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
            if s.user_attrs.get(DONE_ATTR):
                kept.append(s.study_name)
            else:
                optuna.delete_study(study_name=s.study_name, storage=storage)
        text = scrub(copy.read_text(), root)
    left = absolute_paths(text)
    if left:
        raise ValueError(f"{journal}: absolute path {left[0]!r} outside {root}; not portable")
    with gzip.GzipFile(out, "wb", mtime=0) as f:  # no timestamp: the same cells, the same bytes
        f.write(text.encode())
    return sorted(kept)


def restore_journal(
    snapshot: str | os.PathLike[str],
    journal: str | os.PathLike[str],
    root: str | os.PathLike[str],
) -> None:
    """Write ``journal`` from a snapshot, the placeholder replaced by ``root`` (absolute)."""
    with gzip.open(snapshot, "rt") as f:
        text = f.read()
    pathlib.Path(journal).write_text(text.replace(PLACEHOLDER, os.path.abspath(root)))
