"""The Optuna internals optuna-ohgw uses where Optuna has no public API, in one place.

Why each one is needed:

* :func:`storage_of`: ``Study`` keeps its storage private; the promotion loop, the claim and
  crash recovery write trial states and system attrs through it (``optuna.Trial.storage`` is
  public, but a ``FrozenTrial`` or a ``Study`` has no accessor).
* :func:`study_id`, :func:`trial_id`: storage calls take ids, which ``Study``/``FrozenTrial``
  keep private. Fallback: the public ``BaseStorage`` lookups by name and number (one more
  storage round trip each).
* :func:`heartbeat_thread`, :func:`heartbeat_enabled`: a segment run outside
  ``study.optimize`` needs the heartbeat ``optimize`` runs, so a dead worker's trial is failed
  and retried. Fallback: the storage's public ``get_heartbeat_interval()``, and no heartbeat
  thread (stale trials are then only recovered on this host, by process id).
* :func:`sqlite_trial_table`: on SQLite, Optuna's WAITING -> RUNNING pop lets two processes
  win (no ``SELECT ... FOR UPDATE``); the claim updates the trial row conditionally instead.
  Fallback: ``None``, and the claim uses ``set_trial_state_values`` (racy on SQLite only).
* :func:`set_user_attrs`: a warm start writes ~26 user attrs at once; Optuna's storages take
  one per call (one lock, journal append or transaction each). The fast path makes the same
  per-attr updates in one go on the in-memory, journal and RDB storages. Fallback: one
  ``set_trial_user_attr`` call per attr.
* :func:`dist_contains`: whether a proposed value lies in a distribution. Fallback: the same
  check from the distribution's public fields.
* :func:`wrapped_sampler`, :func:`partial_fixed_params`: a ``PartialFixedSampler`` keeps the
  sampler it wraps and its fixed values private (they are its constructor arguments); OHGW
  must see through it to serve a wrapped ``GridSampler``'s points and the fixed values
  untouched. No fallback.
* :func:`proxy_backend`: the storage proxy serves Optuna's ``_CachedStorage``, whose
  ``set_trial_param`` looks the trial up in its cache only: after the proxy restarts, a trial
  created before (the one a worker was drawing) raises ``KeyError`` until some client reads
  the study again (issue 26: the configuration in flight was lost). A trial the cache does not
  know goes to the RDB storage's own ``set_trial_param``. Fallback: Optuna's ``get_storage``.

Every fast path is used only on the Optuna versions it was written and tested against
(:data:`TESTED`); on any other version each function takes its public fallback.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, PartialFixedSampler
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.trial import FrozenTrial

TESTED = ((5, 0), (6, 0))
"""Optuna versions ``[low, high)`` whose internals the fast paths match."""


def _version(text: str) -> tuple[int, int]:
    major, minor = (text.split(".") + ["0"])[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


FAST = TESTED[0] <= _version(optuna.__version__) < TESTED[1]
"""Whether this Optuna version gets the fast paths (tests switch it off to run fallbacks)."""


def storage_of(study: optuna.Study) -> BaseStorage:
    """The study's storage (no public accessor exists, and no fallback)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    if FAST:
        return study._study_id
    return storage_of(study).get_study_id_from_name(study.study_name)


def trial_id(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> int:
    """The storage id of ``trial`` (a running ``optuna.Trial`` or a ``FrozenTrial``)."""
    if FAST:
        return trial._trial_id
    return storage_of(study).get_trial_id_from_study_id_trial_number(study_id(study), trial.number)


def _rdb(storage: BaseStorage) -> RDBStorage | None:
    # An RDB URL opened by optuna.load_study is wrapped in _CachedStorage.
    backend = getattr(storage, "_backend", storage) if FAST else storage
    return backend if isinstance(backend, RDBStorage) else None


def heartbeat_enabled(storage: BaseStorage) -> bool:
    if FAST:
        from optuna.storages._heartbeat import is_heartbeat_enabled

        return is_heartbeat_enabled(storage)
    interval = getattr(storage, "get_heartbeat_interval", None)  # public on RDB storages
    return interval is not None and interval() is not None


@contextlib.contextmanager
def heartbeat_thread(storage: BaseStorage, trial_id: int) -> Iterator[None]:
    """Keep ``trial_id`` alive on a heartbeat storage while the block runs."""
    if not FAST:
        yield
        return
    from optuna.storages._heartbeat import get_heartbeat_thread

    with get_heartbeat_thread(trial_id, storage):
        yield


def sqlite_trial_table(storage: BaseStorage) -> tuple[RDBStorage, Any] | None:
    """``(rdb storage, its trials table)`` when ``storage`` is SQLite and the fast path is on."""
    rdb = _rdb(storage)
    if not FAST or rdb is None or rdb.engine.dialect.name != "sqlite":
        return None
    from optuna.storages._rdb import models

    return rdb, models.TrialModel


def dist_contains(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` (external representation) is a value of ``dist``."""
    try:
        internal = dist.to_internal_repr(value)
    except (TypeError, ValueError):
        return False
    if FAST:
        return dist._contains(internal)
    if isinstance(dist, CategoricalDistribution):
        return 0 <= int(internal) < len(dist.choices)
    if isinstance(dist, FloatDistribution | IntDistribution):
        if not dist.low <= internal <= dist.high:
            return False
        if dist.step is None:
            return True
        k = (internal - dist.low) / dist.step
        return abs(k - round(k)) < 1e-8
    return False


def wrapped_sampler(sampler: BaseSampler) -> BaseSampler | None:
    """The sampler ``sampler`` wraps: a ``PartialFixedSampler``'s base, or the public
    ``base_sampler`` of a wrapper that has one (``OHGWSampler``, ``ProposalSampler``)."""
    inner = (
        sampler._base_sampler
        if isinstance(sampler, PartialFixedSampler)
        else getattr(sampler, "base_sampler", None)
    )
    return inner if isinstance(inner, BaseSampler) else None


def partial_fixed_params(sampler: PartialFixedSampler) -> dict[str, Any]:
    """The values a ``PartialFixedSampler`` fixes (its constructor argument)."""
    return dict(sampler._fixed_params)


def set_user_attrs(storage: BaseStorage, trial_id: int, record: Mapping[str, Any]) -> None:
    """Write ``record`` as user attrs of one trial in a single storage round trip if possible.

    ``BaseStorage`` writes one attr per call, and a warm start writes 4 attrs per float plus 6:
    26 calls for five floats, i.e. 26 lock-and-copy updates in memory (about as much time as the
    rest of the wrapper), 26 locked, fsync'd journal appends (~10 ms per trial) or 26 committed
    transactions in an RDB (50-120 ms per trial on SQLite; measured with
    ``benchmarks/wrapper_overhead.py --storages``; batched: 0.02, ~1 and ~20 ms). For Optuna's
    three storages the
    same per-attr updates are made in one go, exactly as their ``set_trial_user_attr`` makes
    them one at a time (same log entries, same upserts, same checks). Any other storage, or a
    version whose internals differ, gets the public one-call-per-attr path.
    """
    record = dict(record)
    if FAST and len(record) > 1:
        if type(storage) is InMemoryStorage and _has(storage, "_lock", "_get_trial", "_set_trial"):
            with storage._lock:
                trial = storage._get_trial(trial_id)
                storage.check_trial_is_updatable(trial_id, trial.state)
                trial = copy.copy(trial)
                trial.user_attrs = {**trial.user_attrs, **record}
                storage._set_trial(trial_id, trial)
            return
        if type(storage) is JournalStorage and _journal_batch(storage, trial_id, record):
            return
        backend = getattr(storage, "_backend", storage)  # _CachedStorage wraps an RDBStorage
        if isinstance(backend, RDBStorage) and _rdb_batch(backend, trial_id, record):
            return
    for key, value in record.items():
        storage.set_trial_user_attr(trial_id, key, value)


def _has(obj: object, *names: str) -> bool:
    return all(hasattr(obj, name) for name in names)


def _journal_batch(storage: JournalStorage, trial_id: int, record: dict[str, Any]) -> bool:
    try:
        from optuna.storages.journal._storage import JournalOperation
    except ImportError:  # pragma: no cover - a future Optuna moved it
        return False
    if not _has(storage, "_thread_lock", "_backend", "_replay_result", "_sync_with_backend"):
        return False
    # The journal checks updatability only when it replays a log, after appending it, and a
    # refused log is skipped one replay at a time: check first, so that a batch for a finished
    # trial is never appended (its leftover entries would raise again at later syncs).
    storage.check_trial_is_updatable(trial_id, storage.get_trial(trial_id).state)
    with storage._thread_lock:
        worker_id = storage._replay_result.worker_id
        logs = [
            {
                "op_code": JournalOperation.SET_TRIAL_USER_ATTR,
                "worker_id": worker_id,
                "trial_id": trial_id,
                "user_attr": {key: value},
            }
            for key, value in record.items()
        ]
        storage._backend.append_logs(logs)
        storage._sync_with_backend()
    return True


def _rdb_batch(storage: RDBStorage, trial_id: int, record: dict[str, Any]) -> bool:
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
    except ImportError:  # pragma: no cover - a future Optuna moved them
        return False
    if not _has(storage, "scoped_session", "_set_trial_attr_without_commit"):
        return False

    def write() -> None:
        with _create_scoped_session(storage.scoped_session, True) as session:
            for key, value in record.items():
                storage._set_trial_attr_without_commit(
                    session, models.TrialUserAttributeModel, trial_id, key, value
                )

    outage = getattr(storage, "ohgw_outage", None)  # a database restart is waited out
    if outage is None:
        write()
    else:
        from optuna_ohgw.patient_storage import is_db_down

        outage.call(write, is_db_down)
    return True


def proxy_backend(storage: RDBStorage) -> BaseStorage:
    """The storage the gRPC proxy serves for ``storage``: Optuna's cached RDB storage, which
    also sets a parameter of a trial it has not read since it started (see the module
    docstring)."""
    from optuna.storages import get_storage

    cached = get_storage(storage)
    if not FAST or not _has(cached, "_trial_id_to_study_id_and_number", "_lock", "_backend"):
        return cached

    class _Backend(type(cached)):  # type: ignore[misc]
        def set_trial_param(
            self, trial_id: int, param_name: str, param_value_internal: float, distribution: Any
        ) -> None:
            with self._lock:
                known = trial_id in self._trial_id_to_study_id_and_number
            if not known:
                self._backend.set_trial_param(
                    trial_id, param_name, param_value_internal, distribution
                )
                return
            super().set_trial_param(trial_id, param_name, param_value_internal, distribution)

    cached.__class__ = _Backend
    return cached
