"""Riding out a storage outage: a storage whose server goes away for a while is waited for.

A storage proxy restarted, a database failing over, a network blip: every storage call a worker
makes in that time raises, and without help the worker dies with a long traceback and leaves
its trial RUNNING. :class:`PatientStorage` retries each call that failed because the server
could not be reached, with backoff, for up to ``patience`` seconds in all (saying so in one
line on stderr, and again when the server is back), and reconnects before each retry. Past
that it gives up: the call, and every later one, raises :class:`~optuna_ohgw.storage.StorageError`
with one line.

A call is retried only when the server could not be reached (gRPC ``UNAVAILABLE``), i.e. when
it did not happen; a write whose answer was lost is not repeated.
"""

from __future__ import annotations

import abc
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from optuna.storages import BaseStorage

DEFAULT_PATIENCE = 300.0
"""Seconds a worker waits for an unreachable storage before it gives up (five minutes)."""
PATIENCE_ENV = "OHGW_STORAGE_PATIENCE"
MAX_DELAY = 5.0
"""The longest pause between two retries of a call."""


def patience_from_env(default: float = DEFAULT_PATIENCE) -> float:
    """``$OHGW_STORAGE_PATIENCE`` (seconds) or ``default``; a bad value is a one-line error."""
    from optuna_ohgw.storage import StorageError

    text = os.environ.get(PATIENCE_ENV, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise StorageError(f"{PATIENCE_ENV}={text!r}: write a number of seconds >= 0")
    return value


def is_unreachable(err: BaseException) -> bool:
    """Whether ``err`` says the storage server could not be reached (the call did not run)."""
    try:
        import grpc
    except ImportError:  # pragma: no cover - no gRPC, no proxy
        return False
    return isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.UNAVAILABLE


class PatientStorage(BaseStorage):
    """A storage whose calls wait out an outage of its server (see the module docstring).

    Args:
        connect: Opens the storage; called again to reconnect after a failed call.
        where: The storage as the messages name it (no password).
        patience: Seconds of unreachability, counted from the first failed call, after which
            the calls give up.
    """

    def __init__(self, *, connect: Callable[[], BaseStorage], where: str, patience: float) -> None:
        self._connect = connect
        self._inner = connect()
        self._where = where
        self._patience = patience
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._gave_up = False

    @property
    def gave_up(self) -> bool:
        """Whether the calls gave up (an error Optuna raised after that is this outage)."""
        return self._gave_up

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        delay = 0.25
        while True:
            if self._gave_up:
                raise self.give_up_error()
            try:
                result = getattr(self._inner, name)(*args, **kwargs)
            except Exception as err:
                if not is_unreachable(err):
                    raise
                delay = self._wait(err, delay)
                continue
            if self._down_since is not None:
                self._back()
            return result

    def _wait(self, err: Exception, delay: float) -> float:
        """Note the outage, sleep, reconnect; the next delay. Raises once patience runs out."""
        with self._lock:
            now = time.monotonic()
            if self._down_since is None:
                self._down_since = now
                reason = getattr(err, "code", lambda: type(err).__name__)()
                print(
                    f"warning: storage {self._where} unreachable ({reason}); retrying for up to "
                    f"{self._patience:g} s (--storage-patience, {PATIENCE_ENV})",
                    file=sys.stderr,
                    flush=True,
                )
            left = self._patience - (now - self._down_since)
            if left <= 0:
                self._gave_up = True
                raise self.give_up_error() from None
        time.sleep(min(delay, left))
        with self._lock:
            old = self._inner
            try:
                self._inner = self._connect()  # a fresh channel, not one in reconnect backoff
            except Exception:  # noqa: BLE001 - still down: the next call fails and waits again
                return min(delay * 2, MAX_DELAY)
            close = getattr(old, "close", None)
            if close is not None:
                close()
        return min(delay * 2, MAX_DELAY)

    def _back(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            seconds = time.monotonic() - self._down_since
            self._down_since = None
        print(
            f"storage {self._where} reachable again after {seconds:.0f} s; going on",
            file=sys.stderr,
            flush=True,
        )

    def give_up_error(self) -> Exception:
        """The one-line :class:`~optuna_ohgw.storage.StorageError` of giving up."""
        from optuna_ohgw.storage import StorageError

        return StorageError(
            f"storage {self._where} unreachable for {self._patience:g} s; giving up (its "
            "trial stays RUNNING until a worker or run recovers it; wait longer with "
            f"--storage-patience or {PATIENCE_ENV})"
        )


def _delegate(name: str) -> Callable[..., Any]:
    def method(self: PatientStorage, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = getattr(BaseStorage, name).__doc__
    return method


for _name in sorted(
    n for n in dir(BaseStorage) if not n.startswith("_") and callable(getattr(BaseStorage, n))
):
    setattr(PatientStorage, _name, _delegate(_name))
abc.update_abstractmethods(PatientStorage)
