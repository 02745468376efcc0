"""SIGTERM: hand the running trial back and exit within seconds.

Slurm and Kubernetes send SIGKILL 30 s after SIGTERM (by default). A worker stopped by SIGTERM
raises ``KeyboardInterrupt`` in its main thread, whose handler fails the trial it was running
and enqueues it again; a watchdog thread makes sure that happens, and that the process is gone,
within :data:`HAND_BACK_SECONDS` of the signal even if the main thread is slow to get there (a
long native call, a loaded machine): past :data:`WATCHDOG_SECONDS` it hands the trial back
itself and ends the process. A trial not handed back by then stays RUNNING for crash recovery.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import NoReturn

import optuna
from optuna.trial import TrialState

from optuna_ohgw import journal
from optuna_ohgw.runner._recovery import WORKER_ATTR, recover_orphans
from optuna_ohgw.schedulers._recovery import retry

HAND_BACK_SECONDS = 3.5
"""The longest a worker takes from SIGTERM to its exit."""
WATCHDOG_SECONDS = 1.5
"""After this long without the main thread handing back, the watchdog does it."""
SETTLE_SECONDS = 0.3
"""The most the exit waits for the main thread to release a journal's lock; the deadline
timer fires this much before :data:`HAND_BACK_SECONDS`, so the exit stays within it."""
EXIT_INTERRUPTED = 130
"""Exit code of a process stopped by SIGTERM or Ctrl-C (128 + SIGINT, as a shell reports
Ctrl-C); 2 is a user error (bad input, unreachable storage), never an interruption."""


def hand_back(study: optuna.Study, pid: int | None = None) -> list[int]:
    """Fail and enqueue again the trial process ``pid`` (default: this one) of this host was
    running; the numbers of the trials enqueued again."""
    pid = os.getpid() if pid is None else pid
    retried = recover_orphans(study, dead_pids={pid}, interrupted=True)  # still RUNNING
    if retried:
        return retried
    # Optuna's optimize marks an interrupted trial FAIL itself: enqueue it again.
    me = (socket.gethostname(), pid)
    mine = [
        t
        for t in study.get_trials(deepcopy=False)
        if ((t.system_attrs.get(WORKER_ATTR) or {}).get("host"),
            (t.system_attrs.get(WORKER_ATTR) or {}).get("pid")) == me
    ]  # fmt: skip
    if mine and mine[-1].state == TrialState.FAIL:
        # As the segment protocol retries: same parameters, configuration and checkpoint;
        # retry() adds none where one exists already (in the storage, whoever added it).
        retry(study, mine[-1], counts=False)
        return [mine[-1].number]
    return []


def interrupted_message(numbers: list[int]) -> str:
    if not numbers:
        return "interrupted: no trial was running"
    return (
        f"interrupted: trial(s) {numbers} enqueued again for the other workers (or the next run)"
    )


class SigtermHandBack:
    """Turns SIGTERM into ``KeyboardInterrupt`` with a deadline (see the module docstring).

    Whichever of the main thread (:meth:`hand_back`) and the watchdog comes first hands the
    trial back; a timer ends the process :data:`HAND_BACK_SECONDS` after the signal whatever
    happens. An append to a journal is never interrupted (its file lock would stay behind for
    every other process until it expires): the interrupt comes right after it.

    Args:
        load_study: Opens the study on a storage of its own (the watchdog's: the main thread
            may hold the locks of the worker's storage object).
    """

    def __init__(self, *, load_study: Callable[[], optuna.Study]) -> None:
        self._load_study = load_study
        self._claim = threading.Lock()
        self._signalled: float | None = None

    def install(self) -> SigtermHandBack:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    @property
    def signalled(self) -> bool:
        """Whether SIGTERM came (an error raised after it is part of the interruption)."""
        return self._signalled is not None

    def hand_back(self, study: optuna.Study) -> list[int]:
        """The main thread's hand-back after an interrupt: the trial numbers enqueued again.
        If the watchdog got there first, wait for it to end the process."""
        if not self._claim.acquire(blocking=False):
            while True:
                time.sleep(1.0)
        return hand_back(study)

    def _on_sigterm(self, signum: int, frame: object) -> None:
        if self._signalled is not None:
            return  # a second SIGTERM changes nothing
        self._signalled = time.monotonic()
        threading.Thread(target=self._watchdog, name="ohgw-sigterm", daemon=True).start()
        late = "interrupted; handing the trial back took too long (recovery will fail it)"
        timer = threading.Timer(HAND_BACK_SECONDS - SETTLE_SECONDS, self._exit, args=(late,))
        timer.daemon = True
        timer.start()
        if journal.appending():
            journal.interrupt_after_append()
            return
        raise KeyboardInterrupt

    def _watchdog(self) -> None:
        time.sleep(WATCHDOG_SECONDS)  # the main thread's turn first
        if not self._claim.acquire(blocking=False):
            return  # it is handing back; the timer ends the process if it is late
        try:
            message = interrupted_message(hand_back(self._load_study()))
        except Exception as err:  # noqa: BLE001 - the exit must happen; say why it is bare
            message = f"interrupted; the trial could not be handed back ({err})"[:300]
        self._exit(message)

    def _exit(self, message: str) -> None:
        settle = time.monotonic() + SETTLE_SECONDS
        while journal.appending() and time.monotonic() < settle:
            time.sleep(0.01)  # let the main thread release a journal's lock first
        exit_now(f"error: {message}")


def exit_now(line: str | None = None, code: int = EXIT_INTERRUPTED) -> NoReturn:
    """Print ``line`` on stderr and end the process at once: an interrupted worker skips the
    interpreter's shutdown, which with torch loaded can take seconds."""
    if line is not None:
        print(line, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
