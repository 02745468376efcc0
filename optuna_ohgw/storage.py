"""Opening Optuna storages from a URL, with the settings parallel workers need.

* ``journal:PATH`` or any path ending in ``.journal``: ``JournalStorage(JournalFileBackend)``,
  a single file that needs no server (the default; see the README for the measurements).
* ``sqlite:///PATH``: ``RDBStorage`` with WAL journaling and a long busy timeout.
* ``postgresql://...``, ``mysql://...``: ``RDBStorage`` with heartbeats, so a trial whose worker
  died is failed and retried by ``RetryHeartbeatStaleTrialCallback``.
* ``grpc://HOST:PORT``: ``GrpcStorageProxy`` to an ``ohgw-optuna storage-proxy`` that serves an
  RDB storage (one pool of database connections for many workers).
"""

from __future__ import annotations

import pathlib
import sqlite3
import warnings

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 30
MAX_RETRY = 3
JOURNAL_LOCK_GRACE = 10
"""Seconds after which a journal lock left by a killed worker is broken (appends take ms)."""


class StorageError(RuntimeError):
    """The storage URL cannot be opened; the message says which (without secrets) and why."""


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print or log)."""
    if "://" not in url or url.startswith("journal:"):
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is redacted wholesale
        scheme = url.split("://", 1)[0]
        return f"{scheme}://***"


def default_url(study_name: str, root: str | pathlib.Path = "runs") -> str:
    """The embedded default: one journal file per study under ``runs/``."""
    return f"journal:{pathlib.Path(root) / f'{study_name}.journal'}"


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith(".journal")


def journal_path(url: str) -> pathlib.Path:
    return pathlib.Path(url.removeprefix("journal:"))


def is_grpc(url: str) -> bool:
    return url.startswith("grpc://")


def open_grpc_proxy(url: str, *, timeout: float = 10.0) -> BaseStorage:
    """A ``GrpcStorageProxy`` for ``grpc://HOST:PORT``, once its server answers."""
    host, _, port = url.removeprefix("grpc://").rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise StorageError(f"storage {url}: write grpc://HOST:PORT")
    try:
        from optuna.storages import GrpcStorageProxy

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            proxy = GrpcStorageProxy(host=host, port=int(port))
        proxy.wait_server_ready(timeout=timeout)
    except ImportError:
        raise StorageError(
            f"storage {url} needs grpcio: pip install 'optuna-ohgw[grpc]'"
        ) from None
    except ConnectionError:
        raise StorageError(
            f"no storage proxy answers at {url} within {timeout:g} s; start one with "
            "`ohgw-optuna storage-proxy --storage URL`"
        ) from None
    return proxy


def open_storage(url: str, *, heartbeat: bool = True) -> BaseStorage:
    """Open ``url`` for a worker or the parent; raise :class:`StorageError` in one line."""
    if is_grpc(url):
        return open_grpc_proxy(url)
    if is_journal(url):
        # An absolute path: the lock is a symlink to the journal, and a relative target would
        # resolve against runs/ itself, so a lock left by a killed worker would never expire.
        path = journal_path(url).resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = JournalFileSymlinkLock(str(path), grace_period=JOURNAL_LOCK_GRACE)
            return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
        except OSError as err:
            raise StorageError(f"cannot open journal file {path}: {err.strerror}") from None
    if url.startswith("sqlite:///"):
        path = pathlib.Path(url.removeprefix("sqlite:///"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(path, timeout=60) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
        except (OSError, sqlite3.Error) as err:
            raise StorageError(f"cannot open SQLite file {path}: {err}") from None
    kwargs: dict = {"engine_kwargs": {"connect_args": {"timeout": 60}}}
    if not url.startswith("sqlite"):
        kwargs = {"engine_kwargs": {"pool_pre_ping": True}}
        if heartbeat:
            kwargs.update(
                heartbeat_interval=HEARTBEAT_INTERVAL,
                grace_period=GRACE_PERIOD,
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if "heartbeat_interval" in kwargs:
                kwargs["heartbeat_stale_trial_callback"] = (
                    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
                )
            return RDBStorage(url, **kwargs)
    except Exception as err:  # noqa: BLE001 - sqlalchemy raises many kinds; one line for all
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StorageError(
            f"cannot reach storage {redact(url)}: {reason[:200]}. Check the URL, that the "
            "server is running and reachable, and the credentials."
        ) from None
