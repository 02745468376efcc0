"""Opening Optuna storages from a URL, with the settings parallel workers need.

* ``journal:PATH`` or any path ending in ``.journal``: ``JournalStorage(JournalFileBackend)``,
  a single file that needs no server (the default; see the README for the measurements).
* ``sqlite:///PATH``: ``RDBStorage`` with WAL journaling and a long busy timeout.
* ``postgresql://...`` (``postgres://`` too), ``mysql://...``: ``RDBStorage`` with heartbeats,
  so a trial whose worker died is failed and retried by ``RetryHeartbeatStaleTrialCallback``.
* ``grpc://HOST:PORT``: ``GrpcStorageProxy`` to an ``ohgw-optuna storage-proxy`` that serves an
  RDB storage (one pool of database connections for many workers).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sqlite3
import sys
import time
import warnings

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileSymlinkLock

from optuna_ohgw import journal
from optuna_ohgw.storage_error import StorageError

HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 30
MAX_RETRY = 3
JOURNAL_LOCK_GRACE = 10
"""Seconds after which a journal lock left by a killed worker is broken (appends take ms)."""
SCHEMA_RETRIES = 3
"""Times an RDB storage is opened again after losing the race to create Optuna's tables."""


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


def open_grpc_proxy(
    url: str, *, timeout: float | None = None, patience: float | None = None
) -> BaseStorage:
    """A ``GrpcStorageProxy`` for ``grpc://HOST:PORT``, once its server answers, that waits
    out a later outage of the proxy for ``patience`` seconds (default ``$OHGW_STORAGE_PATIENCE``,
    else five minutes; :class:`~optuna_ohgw.patient_storage.PatientStorage`). A proxy still
    starting is waited for as long (``timeout``, default the patience, at least 10 s)."""
    from optuna_ohgw.patient_storage import PatientStorage, patience_from_env

    patience = patience_from_env() if patience is None else patience
    timeout = max(10.0, patience) if timeout is None else timeout

    host, _, port = url.removeprefix("grpc://").rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise StorageError(f"storage {url}: write grpc://HOST:PORT")
    try:
        from optuna.storages import GrpcStorageProxy

        def connect() -> BaseStorage:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return GrpcStorageProxy(host=host, port=int(port))

        first = connect()
        try:
            first.wait_server_ready(timeout=min(timeout, 2.0))  # type: ignore[attr-defined]
        except ConnectionError:
            if timeout <= 2.0:
                raise
            print(
                f"warning: no storage proxy answers at {url} yet; waiting up to {timeout:g} s "
                "(--storage-patience, OHGW_STORAGE_PATIENCE)",
                file=sys.stderr,
                flush=True,
            )
            first.wait_server_ready(timeout=timeout - 2.0)  # type: ignore[attr-defined]
    except ImportError:
        raise StorageError(
            f"storage {url} needs grpcio: pip install 'optuna-ohgw[grpc]'"
        ) from None
    except ConnectionError:
        raise StorageError(
            f"no storage proxy answers at {url} within {timeout:g} s; start one with "
            "`ohgw-optuna storage-proxy --storage URL`"
        ) from None
    return PatientStorage(connect=connect, where=url, patience=patience)


def outage_error(storage: BaseStorage) -> Exception | None:
    """The one-line error of a storage that gave up waiting out an outage, else ``None``.

    Optuna may raise another error after it (e.g. ``optimize`` losing its own while it tells
    the trial); a worker checks this first, so the outage is what it reports."""
    from optuna_ohgw.patient_storage import PatientStorage

    if isinstance(storage, PatientStorage) and storage.gave_up:
        return storage.give_up_error()
    outage = getattr(getattr(storage, "_backend", storage), "ohgw_outage", None)  # an RDB's
    if outage is not None and outage.gave_up:
        return outage.give_up_error()
    return None


def normalize_url(url: str) -> str:
    """``postgres://`` (libpq, Heroku) is SQLAlchemy's ``postgresql://``; a PostgreSQL URL
    without a driver gets one that is installed (SQLAlchemy's default, psycopg 3, may not be)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgres", "postgresql"):
        has_v3 = importlib.util.find_spec("psycopg") is not None
        has_v2 = importlib.util.find_spec("psycopg2") is not None
        driver = "" if has_v3 or not has_v2 else "+psycopg2"
        return f"postgresql{driver}://{rest}"
    return url


def storage_file(url: str) -> pathlib.Path | None:
    """The file a journal or SQLite URL names (``None`` for a server URL)."""
    if is_journal(url):
        return journal_path(url)
    if url.startswith("sqlite:///"):
        return pathlib.Path(url.removeprefix("sqlite:///"))
    return None


def open_storage(url: str, *, heartbeat: bool = True, create: bool = True) -> BaseStorage:
    """Open ``url`` for a worker or the parent; raise :class:`StorageError` in one line.

    Args:
        url: A storage URL (see the module docstring).
        heartbeat: Heartbeats on RDB servers (workers and the parent of a run).
        create: Create a missing journal or SQLite file (and its folder). With ``False``, a
            missing file is an error and nothing is written (``status``, ``report``).
    """
    url = normalize_url(url)
    if is_grpc(url):
        return open_grpc_proxy(url, timeout=None if create else 10.0)  # status: 10 s
    path = storage_file(url)
    if path is not None:
        # A journal's folder is made (the default runs/); a SQLite URL names its folder.
        _check_file(path.resolve(), create=create, make_folder=is_journal(url))
    if is_journal(url):
        # An absolute path: the lock is a symlink to the journal, and a relative target would
        # resolve against runs/ itself, so a lock left by a killed worker would never expire.
        path = journal_path(url).resolve()
        try:
            return _open_journal(path, create=create)
        except OSError as err:
            raise StorageError(f"cannot open journal file {path}: {err.strerror}") from None
    if path is not None and create:
        try:
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
    from optuna_ohgw.patient_storage import patience_from_env, patient_rdb

    patience = None if url.startswith("sqlite") else patience_from_env()
    for attempt in range(SCHEMA_RETRIES + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                if "heartbeat_interval" in kwargs:
                    kwargs["heartbeat_stale_trial_callback"] = (
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
                    )
                rdb = RDBStorage(url, **kwargs)
            if patience is None:
                return rdb
            # A database restart or failover is waited out as a proxy's outage is.
            return patient_rdb(rdb, where=redact(url), patience=patience)
        except Exception as err:  # noqa: BLE001 - sqlalchemy raises many kinds; one line for all
            if _is_schema_race(err) and attempt < SCHEMA_RETRIES:
                # Two processes created Optuna's tables at once on an empty database and this
                # one lost: the tables exist now, so opening again succeeds.
                time.sleep(0.2 * (attempt + 1))
                continue
            raise StorageError(_explain(url, err)) from None
    raise AssertionError("unreachable")


def _open_journal(path: pathlib.Path, *, create: bool) -> JournalStorage:
    """A journal whose last record was cut off, or with a broken record anywhere (two fused,
    garbage): a writer (``create``) cuts the file at that record, keeping a copy of the
    original; a reader, which writes nothing, gets one line."""
    if not create:
        broken = journal.first_broken(path)
        good = broken if broken is not None else journal.wait_for_tail(path)
        if good is not None:
            kept = "every record before it" if broken is not None else "every complete record"
            raise StorageError(
                f"{journal.describe(path, good, mid_file=broken is not None)}; repair it, "
                f"keeping {kept}: cp {path} {path}.bak && truncate -s {good} {path} (a run or "
                "worker on it does this by itself)"
            )
    lock = JournalFileSymlinkLock(str(path), grace_period=JOURNAL_LOCK_GRACE)
    backend = journal.CheckedJournalFileBackend(str(path), lock_obj=lock)
    if create:
        backend.repair_if_cut(whole=True)
    return JournalStorage(backend)


def _check_file(path: pathlib.Path, *, create: bool, make_folder: bool = True) -> None:
    """A missing file when ``create`` is off, a missing folder unless ``make_folder``, or a
    folder this process cannot write to."""
    if not path.exists():
        if not create:
            raise StorageError(f"no storage file {path} (check --storage, or run the study first)")
        if not make_folder and not path.parent.is_dir():
            raise StorageError(
                f"no folder {path.parent} for the SQLite file {path.name}: create it "
                f"(mkdir -p {path.parent}) or fix the URL"
            )
        folder = next(p for p in path.parents if p.exists())
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StorageError(
                f"cannot create {path}: folder {folder} is not writable; pass --storage with a "
                "path you can write to"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(f"cannot create folder {path.parent}: {err.strerror}") from None
    elif create and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)):
        # The journal's lock is a symlink next to it and SQLite's WAL files live there too.
        raise StorageError(
            f"cannot write to {path} or its folder {path.parent} (permission denied); pass "
            "--storage with a path you can write to"
        )


def _is_schema_race(err: Exception) -> bool:
    text = str(err)
    return any(
        marker in text
        for marker in ("UniqueViolation", "already exists", "Duplicate entry", "duplicate key")
    )


def _explain(url: str, err: Exception) -> str:
    """One line that says what went wrong with an RDB URL, without its password."""
    text = str(err).strip()
    reason = text.splitlines()[0] if text else type(err).__name__
    low = text.lower()
    where = redact(url)
    if "can't load plugin" in low or "db access module" in low or "no module named" in low:
        return (
            f"cannot open storage {where}: unknown or uninstalled database driver; use e.g. "
            "postgresql+psycopg2:// (pip install psycopg2-binary), mysql+pymysql://, sqlite:///"
        )
    if "connection refused" in low or "could not connect" in low or "can't connect" in low:
        return (
            f"cannot reach storage {where}: connection refused; is the server running and "
            "listening at that host and port?"
        )
    if "could not translate host name" in low or "name or service not known" in low:
        return f"cannot reach storage {where}: unknown host; check the host name in the URL"
    if "authentication failed" in low or "access denied" in low:
        return f"cannot open storage {where}: authentication failed; check the user and password"
    if "does not exist" in low and "database" in low:
        return f"cannot open storage {where}: {reason[:160]}; create the database first"
    if "permission denied" in low:
        return (
            f"cannot open storage {where}: permission denied ({reason[:120]}); the user needs "
            "the right to create tables in that database"
        )
    return (
        f"cannot reach storage {where}: {reason[:200]}. Check the URL, that the server is "
        "running and reachable, and the credentials."
    )
