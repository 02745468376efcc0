"""Riding out a storage outage: a storage whose server goes away for a while is waited for.

A storage proxy restarted, a database failing over, a network blip: every storage call a worker
makes in that time raises, and without help the worker dies with a long traceback and leaves
its trial RUNNING. :class:`PatientStorage` retries each call that failed because the server
could not be reached, with backoff, for up to ``patience`` seconds in all (saying so in one
line on stderr, and again when the server is back), and reconnects before each retry. Past
that it gives up: the call, and every later one, raises
:class:`~optuna_ohgw.storage_error.StorageError` with one line.

A call is retried only when it did not happen: the server could not be reached (gRPC
``UNAVAILABLE``; for a database, see :func:`is_db_down`, which also retries a transaction
the server dropped before its commit). A write whose answer was lost is not repeated.
"""

from __future__ import annotations

import abc
import contextlib
import inspect
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from optuna.storages import BaseStorage, RDBStorage

from optuna_ohgw.storage_error import StorageError

DEFAULT_PATIENCE = 300.0
"""Seconds a worker waits for an unreachable storage before it gives up (five minutes)."""
PATIENCE_ENV = "OHGW_STORAGE_PATIENCE"
MAX_DELAY = 5.0
"""The longest pause between two retries of a call."""


def patience_from_env(default: float = DEFAULT_PATIENCE) -> float:
    """``$OHGW_STORAGE_PATIENCE`` (seconds) or ``default``; a bad value is a one-line error."""
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


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the errors it was raised from or while handling (``__cause__``, else
    ``__context__``), at most 8: Optuna raises its error from SQLAlchemy's."""
    seen: BaseException | None = err
    for _ in range(8):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def _reason(err: BaseException) -> str:
    """What made a storage unreachable, in a word: the gRPC status code, or the database's error
    in the chain (Optuna's error from SQLAlchemy's ``OperationalError``; a
    ``PendingRollbackError`` raised while handling a dropped connection names the drop), or
    else the error the chain of causes started from."""
    import sqlalchemy.exc

    code = getattr(err, "code", None)
    if callable(code):
        return str(code())
    for seen in _chain(err):
        if isinstance(seen, sqlalchemy.exc.DBAPIError):
            return type(seen).__name__
    root = err
    while root.__cause__ is not None:
        root = root.__cause__
    return type(root).__name__


class _Outage:
    """The waiting of one storage through its outages: one line when it starts, one when it
    ends, backoff between tries, and giving up after ``patience`` seconds."""

    def __init__(self, where: str, patience: float) -> None:
        self.where = where
        self.patience = patience
        self.lock = threading.Lock()
        self.down_since: float | None = None
        self.gave_up = False

    def wait(self, err: Exception, delay: float, reconnect: Callable[[], None] | None) -> float:
        """Note the outage, sleep, reconnect; the next delay. Raises once patience runs out."""
        with self.lock:
            now = time.monotonic()
            if self.down_since is None:
                self.down_since = now
                print(
                    f"warning: storage {self.where} unreachable ({_reason(err)}); retrying for "
                    f"up to {self.patience:g} s (--storage-patience, {PATIENCE_ENV})",
                    file=sys.stderr,
                    flush=True,
                )
            left = self.patience - (now - self.down_since)
            if left <= 0:
                self.gave_up = True
                raise self.give_up_error() from None
        time.sleep(min(delay, left))
        if reconnect is not None:
            with self.lock:
                with contextlib.suppress(Exception):  # still down: the next call waits again
                    reconnect()
        return min(delay * 2, MAX_DELAY)

    def back(self) -> None:
        with self.lock:
            if self.down_since is None:
                return
            seconds = time.monotonic() - self.down_since
            self.down_since = None
        print(
            f"storage {self.where} reachable again after {seconds:.0f} s; going on",
            file=sys.stderr,
            flush=True,
        )

    def give_up_error(self) -> Exception:
        return StorageError(
            f"storage {self.where} unreachable for {self.patience:g} s; giving up (its "
            "trial stays RUNNING until a worker or run recovers it; wait longer with "
            f"--storage-patience or {PATIENCE_ENV})"
        )

    def call(
        self,
        do: Callable[[], Any],
        unreachable: Callable[[BaseException], bool],
        reconnect: Callable[[], None] | None = None,
    ) -> Any:
        delay, waited = 0.25, False
        while True:
            if self.gave_up:
                raise self.give_up_error()
            try:
                result = do()
            except Exception as err:
                if not unreachable(err):
                    raise
                delay, waited = self.wait(err, delay, reconnect), True
                continue
            if waited:  # a call that reached the server after waiting (not one that needs none)
                self.back()
            return result


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
        self._outage = _Outage(where, patience)

    @property
    def gave_up(self) -> bool:
        """Whether the calls gave up (an error Optuna raised after that is this outage)."""
        return self._outage.gave_up

    def _reconnect(self) -> None:
        old, self._inner = self._inner, self._connect()  # not a channel in reconnect backoff
        close = getattr(old, "close", None)
        if close is not None:
            close()

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._outage.call(
            lambda: getattr(self._inner, name)(*args, **kwargs), is_unreachable, self._reconnect
        )

    def give_up_error(self) -> Exception:
        """The one-line :class:`~optuna_ohgw.storage_error.StorageError` of giving up."""
        return self._outage.give_up_error()


DB_DOWN = (
    "connection refused",
    "could not connect",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "can't connect to mysql server",
    "lost connection to mysql server at 'reading initial communication packet'",
)
"""How a database that cannot be reached at all says so (the call never ran)."""


def is_db_down(err: BaseException) -> bool:
    """Whether ``err`` (or the error it was raised from) says a call to a database server did
    not happen, so that running it again is safe:

    - the server could not be reached when the call connected (SQLAlchemy's
      ``OperationalError`` on a new connection; ``pool_pre_ping`` replaces the connections a
      restart killed before a call uses them), or
    - the server dropped the connection while a statement of the call's transaction ran (a
      restart in the middle of a call): the transaction never committed, the server rolled
      it back. A connection lost at the ``COMMIT`` itself is not retried (SQLAlchemy reports
      it without a statement): the write may have landed.
    """
    import sqlalchemy.exc

    for seen in _chain(err):
        if isinstance(seen, sqlalchemy.exc.OperationalError):
            text = str(seen).lower()
            connecting = "connection to server at" in text and " failed:" in text  # psycopg
            if connecting or any(marker in text for marker in DB_DOWN):
                return True
            statement = (seen.statement or "").lstrip().upper()
            return seen.connection_invalidated and bool(statement) and statement != "COMMIT"
    return False


CACHE_CALLS = (
    "_create_new_trial",
    "_get_best_trial_id",
    "_get_stale_trial_ids",
    "_get_trials",
    "_set_trial_param",
)
"""The RDB storage's private calls Optuna's cache (``_CachedStorage``) makes."""


def patient_rdb(storage: RDBStorage, *, where: str, patience: float) -> RDBStorage:
    """``storage`` (an RDB storage on a server) whose public calls wait out the server's
    outage (a restart, a failover) as :class:`PatientStorage` waits for a proxy. It stays an
    ``RDBStorage`` (Optuna's cache, heartbeats and the fast paths work as before); a call is
    retried only when the server could not be reached (:func:`is_db_down`)."""
    outage = _Outage(where, patience)
    base = type(storage)

    def patient(name: str) -> Callable[..., Any]:
        plain = getattr(base, name)

        def method(self: RDBStorage, *args: Any, **kwargs: Any) -> Any:
            return outage.call(lambda: plain(self, *args, **kwargs), is_db_down)

        method.__name__ = name
        method.__doc__ = plain.__doc__
        return method

    public = [n for n in dir(base) if not n.startswith("_")]  # heartbeats' calls too
    names = [n for n in [*public, *CACHE_CALLS] if inspect.isfunction(getattr(base, n, None))]
    patient_type = type(
        f"Patient{base.__name__}",
        (base,),
        {
            **{n: patient(n) for n in names},
            "ohgw_outage": outage,
            "__module__": __name__,
        },
    )
    storage.__class__ = patient_type
    return storage


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
