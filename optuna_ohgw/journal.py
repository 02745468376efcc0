"""A journal file whose last record was cut off (a crash or a full disk in the middle of a write)
is found and repaired, never appended to.

Optuna's ``JournalFileBackend`` skips a cut-off last line when it reads, and appends the next
record right after it: the two fuse into one line that no reader can parse, and every record
after it is lost to every later read. :class:`CheckedJournalFileBackend` checks the file's end
under the journal's lock before each append and cuts the broken tail off first (after copying
the original next to it), so every complete record is kept.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import shutil
import sys
import threading
import time
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalFileSymlinkLock


def cut_tail(path: str | os.PathLike[str]) -> int | None:
    """The size of ``path`` up to its last complete record, or ``None`` when nothing is cut."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return None
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return None
        step = 1 << 16
        end = size
        while end > 0:  # the last newline, read backwards in blocks
            start = max(0, end - step)
            f.seek(start)
            block = f.read(end - start)
            at = block.rfind(b"\n")
            if at >= 0:
                return start + at + 1
            end = start
        return 0


def first_broken(path: str | os.PathLike[str]) -> int | None:
    """The offset of the first complete line of ``path`` that is no JSON record (two records
    fused into one line, garbage), or ``None``. Reads the whole file: call it when a journal is
    opened, not before each append (a line being written at the end is :func:`cut_tail`'s)."""
    offset = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return None  # the unterminated tail
            try:
                json.loads(line)
            except ValueError:
                return offset
            offset += len(line)
    return None


def wait_for_tail(path: str | os.PathLike[str], settle: float = 2.0) -> int | None:
    """:func:`cut_tail` without the journal's lock: a cut seen while another process may be
    writing counts only if the file stays the same for ``settle`` seconds."""
    good = cut_tail(path)
    deadline = time.monotonic() + settle
    while good is not None and time.monotonic() < deadline:
        size = os.path.getsize(path)
        time.sleep(0.1)
        if os.path.getsize(path) != size:
            deadline = time.monotonic() + settle  # someone is writing: look again once done
        good = cut_tail(path)
    return good


def repair(path: str | os.PathLike[str], good: int) -> pathlib.Path:
    """Copy ``path`` aside (``PATH.cut-UTCSTAMP``) and cut it to its first ``good`` bytes; the
    copy's path. Call it under the journal's lock."""
    path = pathlib.Path(path)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    backup = path.with_name(f"{path.name}.cut-{stamp}")
    shutil.copy2(path, backup)
    with open(path, "r+b") as f:
        f.truncate(good)
        f.flush()
        os.fsync(f.fileno())
    return backup


def describe(path: str | os.PathLike[str], good: int, *, mid_file: bool = False) -> str:
    """What is wrong with a cut journal, in words (without saying what to do); ``mid_file``:
    the record at ``good`` is broken and complete records may follow it."""
    cut = os.path.getsize(path) - good
    if mid_file:
        return (
            f"journal {path} has a broken record at byte {good} (two records fused into one "
            f"line, or garbage): it and the {cut} bytes from there on cannot be read"
        )
    return (
        f"journal {path} ends in a cut-off record ({cut} bytes after its last complete one, "
        "left by a crash or a full disk in the middle of a write)"
    )


_appending = 0
"""Appends in progress in the main thread (where signal handlers run): their lock must not be
left behind by an interrupt."""
_interrupt_after_append = False


def appending() -> bool:
    """Whether the main thread is appending to a journal (holding, or taking, its file lock)."""
    return _appending > 0


def interrupt_after_append() -> None:
    """Raise ``KeyboardInterrupt`` when the append in progress is done (a signal handler that
    would interrupt it calls this instead, so the journal's lock is released first)."""
    global _interrupt_after_append
    _interrupt_after_append = True


class CheckedJournalFileBackend(JournalFileBackend):
    """``JournalFileBackend`` that repairs a cut-off last record before it appends.

    Args:
        file_path: The journal file.
        lock_obj: The lock every process appending to the file takes.
    """

    def __init__(
        self, file_path: str, lock_obj: JournalFileSymlinkLock | JournalFileOpenLock
    ) -> None:
        super().__init__(file_path, lock_obj=lock_obj)
        self._ohgw_lock = lock_obj

    def repair_if_cut(self, *, whole: bool = False) -> pathlib.Path | None:
        """Cut a broken last record off (under the lock), or with ``whole`` the file from its
        first broken record on (:func:`first_broken`); the original's copy, if any."""
        self._ohgw_lock.acquire()
        try:
            return self._repair_locked(whole=whole)
        finally:
            self._ohgw_lock.release()

    def _repair_locked(self, *, whole: bool = False) -> pathlib.Path | None:
        broken = first_broken(self._file_path) if whole else None
        good = broken if broken is not None else cut_tail(self._file_path)
        if good is None:
            return None
        what = describe(self._file_path, good, mid_file=broken is not None)
        backup = repair(self._file_path, good)
        kept = "every record before it" if broken is not None else "every complete record"
        print(f"warning: {what}; cut it off, keeping {kept} (the original is {backup})",
              file=sys.stderr)  # fmt: skip
        return backup

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        # Optuna's append_logs, with the end of the file checked under the same lock.
        global _appending, _interrupt_after_append
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        main = int(threading.current_thread() is threading.main_thread())
        _appending += main
        try:
            self._ohgw_lock.acquire()
            try:
                self._repair_locked()
                with open(self._file_path, "ab") as f:
                    f.write(text.encode("utf-8"))
                    f.flush()
                    os.fsync(f.fileno())
            finally:
                self._ohgw_lock.release()
        finally:
            _appending -= main
        if main and _interrupt_after_append and not _appending:
            _interrupt_after_append = False
            raise KeyboardInterrupt
