"""Running a named study: the study, its sampler and pruner, budgets, and worker processes.

The parent process creates the study once, starts one worker process per GPU (or per share of
the CPU cores), watches them and the storage (progress bar, crashed workers), and prints a
summary. Each worker is ``python -m optuna_ohgw.worker``: it builds the task, the OHGW-wrapped
sampler and the pruner itself and calls ``study.optimize`` on the shared storage until the
study's budget is spent. A worker that dies in the middle of a trial has that trial failed and
retried with the same parameters (``RetryHeartbeatStaleTrialCallback``), on any storage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from optuna_ohgw.schedulers import BasePromotionScheduler

from optuna_ohgw import attrs, lineage
from optuna_ohgw.checkpoint import CheckpointStore
from optuna_ohgw.studyfile import PROMOTION_SCHEDULERS, SAMPLERS, StudyConfig

WORKER_ATTR = "ohgw:worker"
"""Trial system attr: ``{"host", "pid", "worker"}`` of the process that runs the trial."""
DEFAULT_CHECKPOINT_DIR = pathlib.Path("runs") / "checkpoints"
MAX_CONSECUTIVE_FAILURES = 5
MAX_RESPAWNS = 10


def build_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    """ASHA (stopping type) or Hyperband with explicit resources (never ``"auto"``, which each
    worker would compute on its own); promotion-type schedulers prune nothing."""
    sched = config.scheduler
    if sched.name in PROMOTION_SCHEDULERS:
        return optuna.pruners.NopPruner()
    if sched.name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=sched.min_resource,
            reduction_factor=sched.reduction_factor,
            min_early_stopping_rate=0,
        )
    return optuna.pruners.HyperbandPruner(
        min_resource=sched.min_resource,
        max_resource=config.max_epochs,
        reduction_factor=sched.reduction_factor,
    )


def build_base_sampler(config: StudyConfig, worker_index: int) -> optuna.samplers.BaseSampler:
    """The study's Optuna sampler, seeded per worker so parallel workers do not draw alike."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SAMPLERS[config.sampler](
            seed=config.seed * 1000 + worker_index, **dict(config.sampler_options)
        )


def study_attrs(config: StudyConfig) -> dict[str, Any]:
    """What the study was run with, stored on it for the dashboard and the evidence code."""
    return {
        "ohgw.task": config.task,
        "ohgw.scheduler": config.scheduler.name,
        "ohgw.sampler": config.sampler,
        "ohgw.enabled": config.ohgw.enabled,
        "ohgw.step_rule": config.ohgw.step if config.ohgw.enabled else "off",
        "ohgw.seed": config.seed,
        "ohgw.max_epochs": config.max_epochs,
        "ohgw.target": config.target,
        "ohgw.study_file": str(config.path),
    }


def create_study(config: StudyConfig, storage: BaseStorage) -> optuna.Study:
    """Create the study (or load it, to resume) and record its settings."""
    study = optuna.create_study(
        study_name=config.study_name,
        storage=storage,
        direction=config.direction,
        load_if_exists=True,
        pruner=build_pruner(config),
    )
    for key, value in study_attrs(config).items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
    return study


def finished_counts(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    counts = {state.name.lower(): 0 for state in TrialState}
    for t in trials:
        counts[t.state.name.lower()] += 1
    return counts


def epochs_used(trials: Sequence[FrozenTrial]) -> int:
    return sum(int(t.user_attrs.get(attrs.EPOCHS, 0)) for t in trials)


def build_scheduler(config: StudyConfig, worker_index: int = 0) -> BasePromotionScheduler:
    """The promotion-type scheduler of a study file (``asha-promotion``, ``pasha``, ``dyhpo``)."""
    from optuna_ohgw.schedulers import PASHA, DyHPO, PromotionASHA

    sched = config.scheduler
    if sched.name == "dyhpo":
        return DyHPO(
            sched.min_resource,
            sched.reduction_factor,
            config.max_epochs,
            config.space,
            advance=sched.advance,
            seed=config.seed * 1000 + worker_index,
        )
    cls = PASHA if sched.name == "pasha" else PromotionASHA
    return cls(sched.min_resource, sched.reduction_factor, config.max_epochs)


def is_promotion(config: StudyConfig) -> bool:
    return config.scheduler.name in PROMOTION_SCHEDULERS


def new_configs_allowed(config: StudyConfig, trials: Sequence[FrozenTrial]) -> bool:
    """Promotion mode: ``n_trials`` counts configurations, not segments."""
    budget = config.budget
    if budget.total_epochs and epochs_used(trials) >= budget.total_epochs:
        return False
    return not budget.n_trials or len(lineage.configurations(trials)) < budget.n_trials


def budget_spent(config: StudyConfig, trials: Sequence[FrozenTrial]) -> bool:
    """True when the study's trial or epoch budget is used up (failed trials do not count)."""
    budget = config.budget
    if is_promotion(config):
        if budget.total_epochs and epochs_used(trials) >= budget.total_epochs:
            return True
        # Paused continuations that nobody promotes do not keep the study open.
        pending = any(
            t.state == TrialState.RUNNING
            or (t.state == TrialState.WAITING and not lineage.is_continuation(t))
            for t in trials
        )
        return not new_configs_allowed(config, trials) and not pending
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    if budget.n_trials and done >= budget.n_trials:
        return True
    return bool(budget.total_epochs and epochs_used(trials) >= budget.total_epochs)


class BudgetCallback:
    """Stops ``study.optimize`` in a worker when the budget is spent or trials keep failing."""

    def __init__(self, config: StudyConfig) -> None:
        self.config = config
        self.consecutive_failures = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.consecutive_failures = (
            self.consecutive_failures + 1 if trial.state == TrialState.FAIL else 0
        )
        if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            study.stop()
        elif budget_spent(self.config, study.get_trials(deepcopy=False)):
            study.stop()


def run_worker(
    config: StudyConfig,
    storage: BaseStorage,
    worker_index: int,
    *,
    data_dir: str | None = None,
    download: bool = False,
    device: str | None = None,
    checkpoint_dir: str | pathlib.Path = DEFAULT_CHECKPOINT_DIR,
) -> None:
    """One worker: train trials of ``config`` on ``storage`` until the budget is spent."""
    import torch

    from optuna_ohgw.sampler import OHGWSampler
    from optuna_ohgw.steps import make_step_rule
    from optuna_ohgw.tasks import get_task

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    task = get_task(config.task)(device=device, data_dir=data_dir, download=download)
    task.splits(config.seed)  # a missing dataset fails here, before any trial starts
    objective = task.make_objective(
        config.seed,
        config.space,
        config.max_epochs,
        fixed=config.fixed,
        batch_size=config.batch_size or None,
    )
    base = build_base_sampler(config, worker_index)
    if config.scheduler.name == "dyhpo":
        from optuna_ohgw.schedulers import ProposalSampler

        base = ProposalSampler(base)  # DyHPO's new configurations, then OHGW's nudge
    probe = None
    if config.ohgw.enabled:
        probe = task.make_probe(
            config.seed,
            config.space,
            config.fixed,
            k=config.ohgw.k or None,
            n_pairs=config.ohgw.n_pairs,
            batch_size=config.ohgw.batch_size,
        )
    rule = make_step_rule(config.ohgw.step, base=config.ohgw.base, **config.ohgw.step_options())
    sampler = OHGWSampler(
        base,
        probe,
        step=rule,
        n_steps=config.ohgw.n_steps,
        search_space=config.space,
        seed=config.seed,
    )
    study = optuna.load_study(
        study_name=config.study_name, storage=storage, sampler=sampler, pruner=build_pruner(config)
    )
    if budget_spent(config, study.get_trials(deepcopy=False)):
        return
    me = {"host": socket.gethostname(), "pid": os.getpid(), "worker": worker_index}

    def tracked(trial: optuna.Trial) -> float:
        trial.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, me)
        return objective(trial)

    if is_promotion(config):
        from optuna_ohgw.schedulers import PauseResumeHooks, run_promotion_worker

        scheduler = build_scheduler(config, worker_index)
        on_resume = None
        if config.ohgw.enabled and config.ohgw.reprobe:
            from optuna_ohgw.schedulers import ResumeProbe

            options = {"k": config.ohgw.k or None, "n_pairs": config.ohgw.n_pairs}
            on_resume = ResumeProbe(
                lambda state: task.make_probe(
                    config.seed,
                    config.space,
                    config.fixed,
                    batch_size=config.ohgw.batch_size,
                    model=state.model,
                    **options,
                ),
                config.space,
                step=rule,
                seed=config.seed,
            )
        objective.hooks = PauseResumeHooks(
            scheduler, checkpoint_store(config, checkpoint_dir), on_resume=on_resume
        )
        wall = config.budget.wall_seconds
        run_promotion_worker(
            study,
            tracked,
            scheduler,
            lambda trials: new_configs_allowed(config, trials),
            budget_spent=lambda trials: bool(
                config.budget.total_epochs and epochs_used(trials) >= config.budget.total_epochs
            ),
            deadline=time.time() + wall if wall else None,
        )
        return
    study.optimize(
        tracked,
        callbacks=[BudgetCallback(config)],
        timeout=config.budget.wall_seconds or None,
        catch=(Exception,),
    )


def checkpoint_store(config: StudyConfig, root: str | pathlib.Path) -> CheckpointStore:
    return CheckpointStore(root, config.study_name)


def fail_and_retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Fail a trial whose worker died and enqueue a retry with the same parameters."""
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    failed = study._storage.get_trial(trial._trial_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)(study, failed)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_orphans(study: optuna.Study, dead_pids: set[int] | None = None) -> list[int]:
    """Fail and retry RUNNING trials of this host whose worker process is gone.

    ``dead_pids`` names the workers known to have exited; without it every RUNNING trial of
    this host whose process no longer exists is recovered (a run that crashed as a whole).
    """
    host = socket.gethostname()
    recovered = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.system_attrs.get(WORKER_ATTR)
        if not owner or owner.get("host") != host:
            continue
        pid = int(owner["pid"])
        if pid not in dead_pids if dead_pids is not None else _pid_alive(pid):
            continue
        fail_and_retry(study, t)
        recovered.append(t.number)
    return recovered


@dataclasses.dataclass
class RunSummary:
    """What a run (or a status query) found in the storage."""

    study_name: str
    counts: dict[str, int]
    configurations: int
    not_promoted: int
    epochs: int
    best_value: float | None
    best_number: int | None
    best_params: dict[str, Any]
    best_test_accuracy: float | None
    probe_seconds: float
    wall_seconds: float

    def rows(self) -> list[tuple[str, str]]:
        c = self.counts
        best = (
            "-" if self.best_value is None else f"{self.best_value:.4f} (trial {self.best_number})"
        )
        test = "-" if self.best_test_accuracy is None else f"{self.best_test_accuracy:.4f}"
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.best_params.items()) or "-"
        return [
            ("study", self.study_name),
            (
                "trials",
                f"{c['complete']} complete, {c['pruned']} pruned, {c['fail']} failed, "
                f"{c['running']} running, {c['waiting']} waiting",
            ),
            ("configurations", str(self.configurations)),
            ("paused, never resumed", str(self.not_promoted)),
            ("epochs trained", str(self.epochs)),
            ("best value", best),
            ("best test accuracy", test),
            ("best params", params),
            ("probe seconds", f"{self.probe_seconds:.1f}"),
            ("wall seconds", f"{self.wall_seconds:.1f}"),
        ]

    def format(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self.rows())


def summarize(study: optuna.Study, wall_seconds: float = 0.0) -> RunSummary:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = None
    if complete:
        pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
        best = pick(complete, key=lambda t: t.value)  # type: ignore[arg-type, return-value]
    test = best.user_attrs.get("test_accuracy") if best else None
    return RunSummary(
        study_name=study.study_name,
        counts=finished_counts(trials),
        configurations=len(lineage.configurations(trials)),
        not_promoted=sum(bool(t.user_attrs.get(lineage.NOT_PROMOTED)) for t in trials),
        epochs=epochs_used(trials),
        best_value=None if best is None else float(best.value),  # type: ignore[arg-type]
        best_number=None if best is None else best.number,
        best_params={} if best is None else dict(best.params),
        best_test_accuracy=None if test is None else float(test),
        probe_seconds=sum(float(t.user_attrs.get(attrs.PROBE_SECONDS, 0.0)) for t in trials),
        wall_seconds=wall_seconds,
    )


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """How the parent starts worker ``index``: its environment and its arguments."""

    index: int
    env: dict[str, str]
    args: list[str]
    log_path: pathlib.Path


def _usable_cpus() -> int:
    """The cores this process may run on (``taskset``, container cpusets), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_specs(
    config: StudyConfig,
    storage_url: str,
    n_workers: int,
    *,
    data_dir: str | None,
    download: bool,
    n_gpus: int,
    overrides: dict[str, Any],
    log_dir: pathlib.Path,
    checkpoint_dir: str | pathlib.Path = DEFAULT_CHECKPOINT_DIR,
) -> list[WorkerSpec]:
    """Pin worker ``i`` to GPU ``i mod n_gpus`` or to its share of the CPU cores.

    The storage URL goes through the environment, not the command line, so a password in it
    never shows in a process list.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpu_ids = [g for g in visible.split(",") if g] if visible else [str(i) for i in range(n_gpus)]
    threads = max(1, _usable_cpus() // n_workers)
    specs = []
    for i in range(n_workers):
        env = dict(os.environ)
        env["OHGW_STORAGE_URL"] = storage_url
        if gpu_ids:
            env["CUDA_VISIBLE_DEVICES"] = gpu_ids[i % len(gpu_ids)]
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""
            env["OMP_NUM_THREADS"] = str(threads)
        payload = {
            "study_file": str(config.path),
            "overrides": overrides,
            "worker": i,
            "threads": threads,
            "data_dir": data_dir,
            "download": download,
            "checkpoint_dir": str(checkpoint_dir),
        }
        args = [sys.executable, "-m", "optuna_ohgw.worker", json.dumps(payload)]
        log_path = log_dir / f"{config.study_name}.worker{i}.log"
        specs.append(WorkerSpec(i, env, args, log_path))
    return specs


ProgressFn = Callable[[RunSummary], None]


def run_study(
    config: StudyConfig,
    storage_url: str,
    n_workers: int,
    *,
    data_dir: str | None = None,
    download: bool = False,
    overrides: dict[str, Any] | None = None,
    log_dir: str | pathlib.Path = "runs",
    checkpoint_dir: str | pathlib.Path = DEFAULT_CHECKPOINT_DIR,
    on_progress: ProgressFn | None = None,
    poll_seconds: float = 0.5,
) -> RunSummary:
    """Run ``config`` with ``n_workers`` worker processes on one storage until its budget is
    spent; resume it if the study exists. Ctrl-C stops the workers; the trials they were running
    are failed and enqueued again, so the next run picks them up first.
    """
    from optuna_ohgw.storage import open_storage

    if n_workers < 1:
        raise ValueError(f"--n-workers must be at least 1, got {n_workers}")
    log_dir = pathlib.Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    storage = open_storage(storage_url)
    study = create_study(config, storage)
    recover_orphans(study)
    n_gpus = _gpu_count()
    specs = worker_specs(
        config,
        storage_url,
        n_workers,
        data_dir=data_dir,
        download=download,
        n_gpus=n_gpus,
        overrides=overrides or {},
        log_dir=log_dir,
        checkpoint_dir=checkpoint_dir,
    )
    start = time.perf_counter()
    procs = {spec.index: _spawn(spec) for spec in specs}
    respawns = 0
    errors: list[str] = []
    try:
        while procs:
            time.sleep(poll_seconds)
            for index, proc in list(procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del procs[index]
                if code == 0:
                    continue
                recover_orphans(study, dead_pids={proc.pid})
                stderr = _last_error(specs[index])
                if code == 2:  # a one-line user error (dataset, storage): no point respawning
                    errors.append(stderr)
                    continue
                trials = study.get_trials(deepcopy=False)
                if respawns < MAX_RESPAWNS and not budget_spent(config, trials):
                    respawns += 1
                    procs[index] = _spawn(specs[index])
            if on_progress is not None:
                on_progress(summarize(study, time.perf_counter() - start))
    except KeyboardInterrupt:
        for proc in procs.values():
            proc.send_signal(signal.SIGINT)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        pids = {p.pid for p in procs.values()}
        recover_orphans(study, dead_pids=pids)
        _retry_interrupted(study, pids)
        raise
    if errors:
        raise RuntimeError(errors[0])
    if is_promotion(config) and budget_spent(config, study.get_trials(deepcopy=False)):
        from optuna_ohgw.schedulers import close_paused

        close_paused(study, checkpoint_store(config, checkpoint_dir))
    return summarize(study, time.perf_counter() - start)


def _retry_interrupted(study: optuna.Study, pids: set[int]) -> None:
    """Enqueue again the trials that interrupted workers marked FAIL, so a rerun resumes them."""
    retried = {t.system_attrs.get("failed_trial") for t in study.get_trials(deepcopy=False)}
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        owner = t.system_attrs.get(WORKER_ATTR) or {}
        if owner.get("pid") in pids and t.number not in retried:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)(study, t)


def _spawn(spec: WorkerSpec) -> subprocess.Popen[bytes]:
    """Start a worker in a new session (the terminal's Ctrl-C reaches only the parent, which
    stops the workers itself), its output appended to its log file."""
    with open(spec.log_path, "ab") as log:
        return subprocess.Popen(
            spec.args,
            env=spec.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _last_error(spec: WorkerSpec) -> str:
    try:
        lines = spec.log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    lines = [line for line in lines if line.strip()]
    return lines[-1] if lines else f"worker {spec.index} failed (see {spec.log_path})"


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no usable CUDA means CPU workers
        return 0
