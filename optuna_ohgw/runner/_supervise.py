"""The parent process of a run: create the study, start one worker process per GPU (or per
share of the CPU cores), watch them and the storage, recover the trials of crashed workers."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from optuna_ohgw import journal
from optuna_ohgw.artifact_store import DEFAULT_ARTIFACTS
from optuna_ohgw.runner._budget import budget_spent
from optuna_ohgw.runner._build import create_study, is_promotion
from optuna_ohgw.runner._handback import HAND_BACK_SECONDS
from optuna_ohgw.runner._recovery import recover_orphans, retry_interrupted
from optuna_ohgw.runner._summary import RunSummary, summarize
from optuna_ohgw.studyfile import StudyConfig, config_to_dict

MAX_RESPAWNS = 10
EXIT_USER_ERROR = 2
EXIT_GAVE_UP = 3
"""Worker exit codes (see :mod:`optuna_ohgw.worker`): neither is worth a respawn."""


class RunFailedError(RuntimeError):
    """Workers gave up (their trials kept failing); :attr:`summary` has what did finish."""

    def __init__(self, message: str, summary: RunSummary) -> None:
        super().__init__(message)
        self.summary = summary


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
    log_dir: pathlib.Path,
    artifacts: str = DEFAULT_ARTIFACTS,
) -> list[WorkerSpec]:
    """Pin worker ``i`` to GPU ``i mod n_gpus`` or to its share of the CPU cores.

    Each worker gets the resolved configuration (overrides applied) as JSON. The storage URL
    goes through the environment, not the command line, so a password in it never shows in a
    process list.
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
            "config": config_to_dict(config),
            "worker": i,
            "threads": threads,
            "data_dir": data_dir,
            "download": download,
            "artifacts": artifacts,
            "parent_pid": os.getpid(),
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
    log_dir: str | pathlib.Path = "runs",
    artifacts: str = DEFAULT_ARTIFACTS,
    on_progress: ProgressFn | None = None,
    poll_seconds: float = 0.5,
) -> RunSummary:
    """Run ``config`` with ``n_workers`` worker processes on one storage until its budget is
    spent; resume it if the study exists. Ctrl-C or SIGTERM stops the workers within seconds;
    the trials they were running are failed and enqueued again, so the next run picks them up
    first.
    """
    from optuna_ohgw.storage import open_storage

    if n_workers < 1:
        raise ValueError(f"--n-workers must be at least 1, got {n_workers}")
    log_dir = pathlib.Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    storage = open_storage(storage_url)
    if is_promotion(config):  # a bad store is one line before the study exists
        from optuna_ohgw.artifact_store import open_artifact_store

        open_artifact_store(artifacts, config.study_name)
    study = create_study(config, storage)
    store = None
    if is_promotion(config):
        from optuna_ohgw.checkpoint import open_checkpoints

        store = open_checkpoints(study, artifacts)  # another store than the study's: one line
    recover_orphans(study)
    specs = worker_specs(
        config,
        storage_url,
        n_workers,
        data_dir=data_dir,
        download=download,
        n_gpus=_gpu_count(),
        log_dir=log_dir,
        artifacts=artifacts,
    )
    start = time.perf_counter()
    restore = _sigterm_interrupts()
    procs = {spec.index: _spawn(spec) for spec in specs}
    respawns = 0
    errors: list[str] = []
    gave_up: list[str] = []
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
                if code == EXIT_USER_ERROR:  # a one-line user error (dataset, storage)
                    errors.append(stderr)
                    continue
                if code == EXIT_GAVE_UP:  # its trials kept failing: a respawn would too
                    gave_up.append(stderr.removeprefix("error: "))
                    continue
                trials = study.get_trials(deepcopy=False)
                if respawns < MAX_RESPAWNS and not budget_spent(config, trials, study):
                    respawns += 1
                    procs[index] = _spawn(specs[index])
            if on_progress is not None:
                on_progress(summarize(study, time.perf_counter() - start))
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: each worker hands its trial back within HAND_BACK_SECONDS; one
        # that has not exited by then is killed and its trial recovered here.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        deadline = time.monotonic() + HAND_BACK_SECONDS + 0.3
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        pids = {p.pid for p in procs.values()}
        recover_orphans(study, dead_pids=pids, interrupted=True)
        retry_interrupted(study, pids)
        raise
    finally:
        restore()
    if errors:
        raise RuntimeError(errors[0])
    if store is not None and budget_spent(config, study.get_trials(deepcopy=False), study):
        from optuna_ohgw.schedulers import finish_study

        finish_study(study, store)
    summary = summarize(study, time.perf_counter() - start)
    if gave_up:
        raise RunFailedError(
            f"{len(gave_up)} of {n_workers} worker(s) gave up: {gave_up[0]} (logs in {log_dir})",
            summary,
        )
    return summary


def _sigterm_interrupts() -> Callable[[], None]:
    """Make SIGTERM (Slurm, Kubernetes, ``kill``) stop the run like Ctrl-C; returns the undo.
    Only the main thread can set a handler: elsewhere SIGTERM keeps its meaning."""

    def interrupt(signum: int, frame: object) -> None:
        if journal.appending():  # never leave a journal's lock behind
            journal.interrupt_after_append()
            return
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous)


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
