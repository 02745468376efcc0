"""Running N simulated asynchronous workers in one process: :func:`run_virtual` (any worker
bodies) and :func:`optimize_virtual` (``study.optimize`` on N virtual workers)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import optuna
from optuna.storages import BaseStorage
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw.virtual._baton import Baton, VirtualClock
from optuna_ohgw.virtual._storage import VirtualWorkerStorage

WorkerBody = Callable[[VirtualWorkerStorage], None]
"""A worker's whole life on its storage view (for example ``study.optimize`` on it)."""


def run_virtual(
    storage: BaseStorage,
    bodies: Sequence[WorkerBody],
    *,
    clock: VirtualClock = "epochs",
    tie_seed: int | None = None,
) -> Baton:
    """Run ``bodies`` (one per simulated worker) on ``storage`` and return their baton.

    Each body runs in its own thread on its own :class:`VirtualWorkerStorage`, and exactly one
    body runs at any moment: the one whose virtual clock is earliest (see :class:`Baton`). The
    training is real; only the parallelism is simulated, so the order of events, and with it
    every sampler and pruner decision, is the same on every run on one machine, whatever its load
    (``clock="epochs"``). On another CPU the floating-point kernels round differently and training
    carries that into every later value and decision: such a rerun is another sample of the same
    experiment, not a copy. The first exception a body raised is raised here once every body
    has ended.

    Args:
        storage: The shared Optuna storage (what real workers would share).
        bodies: Worker ``i``'s body, called with worker ``i``'s storage view.
        clock: ``"epochs"`` (each reported epoch takes one unit) or ``"compute"`` (the CPU
            seconds of the work since the worker's previous report).
        tie_seed: Seeds the order among workers whose clocks tie (see :class:`Baton`);
            ``None``: the lower worker index goes first.
    """
    baton = Baton(len(bodies), clock=clock, tie_seed=tie_seed)
    errors: list[BaseException | None] = [None] * len(bodies)

    def run(index: int) -> None:
        view = VirtualWorkerStorage(storage, baton, index)
        baton.start(index)
        try:
            bodies[index](view)
        except BaseException as err:  # noqa: BLE001 - re-raised in the calling thread
            errors[index] = err
        finally:
            baton.finish(index)

    threads = [
        threading.Thread(target=run, args=(i,), name=f"ohgw-virtual-{i}", daemon=True)
        for i in range(len(bodies))
    ]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():  # a timed join keeps Ctrl-C working in the calling thread
            t.join(timeout=0.5)
    for err in errors:
        if err is not None:
            raise err
    return baton


def optimize_virtual(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_workers: int,
    *,
    n_trials: int,
    sampler_factory: Callable[[int], optuna.samplers.BaseSampler] | None = None,
    clock: VirtualClock = "epochs",
    tie_seed: int | None = None,
    catch: tuple[type[Exception], ...] = (),
) -> Baton:
    """``study.optimize(objective)`` on ``n_workers`` simulated asynchronous workers.

    Every worker loads ``study`` through its own storage view, with the study's pruner and
    ``sampler_factory(worker)`` (default: the study's own sampler, shared as with ``n_jobs``),
    and optimizes until ``n_trials`` trials are complete or pruned; trials that were running
    then finish, as with real workers. Each ``trial.report`` is an event on the virtual clock.

    Args:
        study: The study; its storage is the one the workers share.
        objective: The objective, reporting once per epoch.
        n_workers: Simulated workers.
        n_trials: Finished trials (complete or pruned) after which workers stop taking new ones.
        sampler_factory: Worker index -> its sampler (seed it per worker, as real workers are).
        clock: See :func:`run_virtual`.
        tie_seed: See :func:`run_virtual`.
        catch: Passed to ``study.optimize``.
    """
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    stop = MaxTrialsCallback(n_trials, states=finished)

    def body(index: int) -> WorkerBody:
        def work(view: VirtualWorkerStorage) -> None:
            mine = optuna.load_study(
                study_name=study.study_name,
                storage=view,
                sampler=sampler_factory(index) if sampler_factory else study.sampler,
                pruner=study.pruner,
            )
            if len(mine.get_trials(deepcopy=False, states=finished)) < n_trials:
                mine.optimize(objective, callbacks=[stop], catch=catch)

        return work

    return run_virtual(
        compat.storage_of(study),
        [body(i) for i in range(n_workers)],
        clock=clock,
        tie_seed=tie_seed,
    )
