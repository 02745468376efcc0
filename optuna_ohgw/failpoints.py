"""Failpoints: named points of the segment protocol where a test can kill a worker (SIGKILL).

``OHGW_FAILPOINT=NAME`` makes the first worker process of a run that reaches ``NAME`` kill
itself with SIGKILL, once per run: before the kill it creates a marker file atomically
(``O_CREAT | O_EXCL``), and a process that finds the marker there does not fire again, so the
worker that replaces the dead one runs through. The marker is ``$OHGW_FAILPOINT_MARKER``, or
by default a file in the temporary folder named after the failpoint and the parent process
(one ``ohgw-optuna run``). Only processes that called :func:`arm` fire (the workers, never the
parent of a run, which also walks parts of the protocol when it finishes a study).

``python -m optuna_ohgw.failpoints`` prints the names, one per line. The protocol they mark is
described in ``docs/segment-protocol.md``.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile

NAMES: dict[str, str] = {
    "new.created": "a new configuration's trial exists (owner and lease recorded with it), "
    "before its budget slot is checked",
    "claim.won": "a WAITING trial (retry or paused configuration) was claimed, before its owner "
    "is recorded",
    "segment.started": "a segment's owner is recorded, before training starts",
    "resume.loaded": "a paused configuration's checkpoint was loaded, before training goes on",
    "epoch.reported": "the segment's first epoch was reported, before the next one",
    "pause.saved": "the pause checkpoint was uploaded, before the continuation trial is added",
    "pause.continued": "the continuation trial was added, before the paused segment is told",
    "pause.told": "the paused segment was told, before the checkpoint it resumed from is deleted",
    "finish.reported": "the configuration's last epoch was reported, before the segment is told",
    "finish.told": "a finished segment was told, before the checkpoint it resumed from is deleted",
    "close.claimed": "at the end of the study, a leftover paused configuration was claimed, "
    "before it is closed",
}
"""Failpoint names in protocol order, with where each one kills."""

ENV = "OHGW_FAILPOINT"
MARKER_ENV = "OHGW_FAILPOINT_MARKER"

_armed = False


def arm() -> None:
    """Let this process fire the failpoint named in ``$OHGW_FAILPOINT`` (worker processes)."""
    global _armed
    name = os.environ.get(ENV)
    if name and name not in NAMES:
        raise ValueError(
            f"{ENV}={name} names no failpoint; see `python -m optuna_ohgw.failpoints`"
        )
    _armed = bool(name)


def marker_path(name: str) -> str:
    """The file whose creation claims the failpoint's one kill in this run."""
    return os.environ.get(MARKER_ENV) or os.path.join(
        tempfile.gettempdir(), f"ohgw-failpoint-{name}-{os.getppid()}"
    )


def hit(name: str) -> None:
    """A point of the protocol: SIGKILL this process if it is the first to reach ``name``."""
    if not _armed or os.environ.get(ENV) != name:
        return
    try:
        fd = os.open(marker_path(name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return  # fired already in this run
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    sys.stdout.write("".join(f"{name}\n" for name in NAMES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
