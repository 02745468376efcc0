"""A study file's workers as virtual workers: N simulated asynchronous workers in this process
(:mod:`optuna_ohgw.virtual`), each running the real worker body (:func:`run_worker`)."""

from __future__ import annotations

import time

from optuna_ohgw.artifact_store import DEFAULT_ARTIFACTS
from optuna_ohgw.runner._budget import budget_spent
from optuna_ohgw.runner._build import create_study, is_promotion
from optuna_ohgw.runner._recovery import recover_orphans
from optuna_ohgw.runner._summary import RunSummary, summarize
from optuna_ohgw.runner._worker import run_worker
from optuna_ohgw.studyfile import StudyConfig, StudyFileError
from optuna_ohgw.virtual import VirtualClock, VirtualWorkerStorage, run_virtual


def run_study_virtual(
    config: StudyConfig,
    storage_url: str,
    n_workers: int,
    *,
    clock: VirtualClock = "epochs",
    data_dir: str | None = None,
    download: bool = False,
    artifacts: str = DEFAULT_ARTIFACTS,
    threads: int | None = None,
    tie_seed: int | None = None,
) -> RunSummary:
    """Run ``config`` on ``n_workers`` virtual workers until its budget is spent.

    The same worker body, sampler chain (worker ``i`` seeded ``seed * 1000 + i``), pruner and
    promotion scheduler as :func:`run_study`'s worker processes; the events are ordered by the
    workers' virtual clocks, so the run is the same at every rerun on one machine, whatever its
    load (``clock="epochs"``; another CPU rounds differently, see :func:`run_virtual`). A
    ``wall_seconds`` budget is refused: elapsed time has no meaning here.

    Args:
        config: The resolved study configuration.
        storage_url: The study's storage.
        n_workers: Simulated workers.
        clock: ``"epochs"`` or ``"compute"`` (see :class:`~optuna_ohgw.virtual.Baton`).
        data_dir: The task's dataset folder.
        download: Let the task download its dataset.
        artifacts: Checkpoint store of the promotion schedulers.
        threads: ``torch.set_num_threads`` for the run (default: leave torch's setting).
        tie_seed: Seeds the order among workers whose clocks tie (see
            :class:`~optuna_ohgw.virtual.Baton`); ``None``: the lower worker index first.
    """
    from optuna_ohgw.storage import open_storage

    if n_workers < 1:
        raise ValueError(f"--virtual-workers must be at least 1, got {n_workers}")
    if config.budget.wall_seconds:
        raise StudyFileError(
            f"{config.study_name}: a wall_seconds budget cannot run on virtual workers (their "
            "time is simulated); give n_trials or total_epochs"
        )
    if threads:
        import torch

        torch.set_num_threads(threads)
    storage = open_storage(storage_url)
    study = create_study(config, storage)
    recover_orphans(study)

    def body(index: int):  # noqa: ANN202 - a WorkerBody
        def work(view: VirtualWorkerStorage) -> None:
            run_worker(
                config,
                view,
                index,
                data_dir=data_dir,
                download=download,
                artifacts=artifacts,
                idle=view.idle,
            )

        return work

    start = time.perf_counter()
    run_virtual(storage, [body(i) for i in range(n_workers)], clock=clock, tie_seed=tie_seed)
    if is_promotion(config) and budget_spent(config, study.get_trials(deepcopy=False), study):
        from optuna_ohgw.checkpoint import open_checkpoints
        from optuna_ohgw.schedulers import finish_study

        finish_study(study, open_checkpoints(study, artifacts))
    return summarize(study, time.perf_counter() - start)
