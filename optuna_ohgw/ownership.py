"""Who runs a RUNNING trial, and how any worker tells that its process is gone.

Every RUNNING segment of the promotion loop has an owner that recovery can test (see
``docs/segment-protocol.md``):

* ``OWNER`` (system attr): ``{"host", "pid", ...}`` of the process that runs it. A new
  configuration's trial is created with it (one storage call); a claimed WAITING trial gets it
  right after the claim, and before the claim the process records itself as a *claimant*
  (``CLAIMANT_PREFIX + host:pid``), so a process killed between the two is still known.
* ``LEASE`` (user attr): the time (seconds since the epoch) until which the owner promises to be
  alive, renewed by :class:`LeaseKeeper` while the segment runs. Any worker on any machine fails
  a trial whose lease expired (the storage proxy has no heartbeats; a journal never had any).

A trial is dead when every process that may own it is known dead (same host, no such process)
or when its lease expired; a claimed one whose owner was never recorded counts its lease from
its start time.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from optuna_ohgw import attrs

OWNER = "ohgw:worker"
"""Trial system attr: ``{"host", "pid", "worker", "device", "CUDA_VISIBLE_DEVICES"}`` of the
process that runs the trial."""
CLAIMANT_PREFIX = "ohgw:claimant:"
"""Trial system attrs ``ohgw:claimant:HOST:PID``: a process about to claim the WAITING trial
(the start time), or ``None`` once it lost the claim."""
LEASE = f"{attrs.PREFIX}.lease"
"""Trial user attr: seconds since the epoch until which the owner holds the trial."""
LEASE_SECONDS = 120.0
"""How long a lease lasts; a stranded trial is recovered this long after its last renewal."""
RENEW_SECONDS = 15.0
CLOCK_SKEW = 30.0
"""Allowance for clocks that differ between machines when reading another host's lease."""


def me(**extra: Any) -> dict[str, Any]:
    """This process as an owner record."""
    return {"host": socket.gethostname(), "pid": os.getpid(), **extra}


def claimant_key() -> str:
    return f"{CLAIMANT_PREFIX}{socket.gethostname()}:{os.getpid()}"


def lease_until(seconds: float = LEASE_SECONDS) -> float:
    return time.time() + seconds


def candidates(trial: FrozenTrial) -> list[tuple[str, int]]:
    """``(host, pid)`` of every process that may run ``trial``: its owner, or while none is
    recorded, the claimants that did not lose."""
    owner = trial.system_attrs.get(OWNER)
    if owner:
        return [(str(owner.get("host")), int(owner.get("pid", -1)))]
    found = []
    for key, value in trial.system_attrs.items():
        if key.startswith(CLAIMANT_PREFIX) and value is not None:
            host, _, pid = key.removeprefix(CLAIMANT_PREFIX).rpartition(":")
            found.append((host, int(pid)))
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(
    trial: FrozenTrial,
    *,
    dead_pids: Collection[int] | None = None,
    leases: bool = True,
    now: float | None = None,
) -> bool:
    """Whether the process that runs the RUNNING ``trial`` is gone.

    Args:
        trial: A RUNNING trial.
        dead_pids: Processes of this host known to have exited; without it, this host's
            processes are looked up.
        leases: Also count an expired lease (or, without owner and lease, a start older than
            a lease) as dead.
        now: The time to compare leases with (default: now).
    """
    host = socket.gethostname()
    owners = candidates(trial)

    def gone(h: str, pid: int) -> bool:
        if h != host:
            return False
        if dead_pids is not None:
            return pid in dead_pids
        return pid != os.getpid() and not pid_alive(pid)

    if owners and all(gone(h, pid) for h, pid in owners):
        return True
    if not leases:
        return False
    lease = trial.user_attrs.get(LEASE)
    if lease is None:
        if OWNER in trial.system_attrs or trial.datetime_start is None:
            return False  # a trial outside the promotion loop: only its process tells
        lease = trial.datetime_start.timestamp() + LEASE_SECONDS  # claimed, owner not recorded
    mine = bool(owners) and owners[0][0] == host
    return (now if now is not None else time.time()) > float(lease) + (0 if mine else CLOCK_SKEW)


class LeaseKeeper:
    """Renews a trial's lease from a background thread while a segment runs."""

    def __init__(
        self,
        storage: BaseStorage,
        trial_id: int,
        *,
        seconds: float = LEASE_SECONDS,
        every: float = RENEW_SECONDS,
    ) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self.seconds = seconds
        self.every = every
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.storage.set_trial_user_attr(self.trial_id, LEASE, lease_until(self.seconds))
            except UpdateFinishedTrialError:
                return
            except Exception:  # noqa: BLE001 - an unreachable storage: try again next time
                continue

    @contextmanager
    def held(self) -> Iterator[None]:
        thread = threading.Thread(target=self._run, name="ohgw-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()
