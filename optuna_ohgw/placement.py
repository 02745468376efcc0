"""Where a bare worker runs: its index and its device, from what a cluster launcher sets.

Slurm (``srun``, job arrays) and Kubernetes (an Indexed Job) start one worker per GPU
themselves; each worker reads its place from the environment:

* index (seeds the sampler, so parallel workers draw different configurations):
  ``SLURM_ARRAY_TASK_ID * SLURM_NTASKS + SLURM_PROCID`` under Slurm, else ``RANK``
  (torchrun), else ``JOB_COMPLETION_INDEX`` (Kubernetes), else ``LOCAL_RANK``, else the pid;
* device: ``cuda:LOCAL_RANK`` (or ``SLURM_LOCALID``) modulo the GPUs this process sees, which
  ``CUDA_VISIBLE_DEVICES`` already narrows (``srun --gpus-per-task=1`` and Kubernetes' device
  plugin leave one, so every worker takes ``cuda:0``); the CPU without a usable GPU.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def _int(env: Mapping[str, str], key: str) -> int | None:
    value = env.get(key, "").strip()
    return int(value) if value.isdigit() else None


def worker_index(env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """This worker's index and the variable it came from."""
    env = os.environ if env is None else env
    procid = _int(env, "SLURM_PROCID")
    if procid is not None:
        array, ntasks = _int(env, "SLURM_ARRAY_TASK_ID"), _int(env, "SLURM_NTASKS") or 1
        if array is not None:
            return array * ntasks + procid, "SLURM_ARRAY_TASK_ID*SLURM_NTASKS+SLURM_PROCID"
        return procid, "SLURM_PROCID"
    for key in ("RANK", "JOB_COMPLETION_INDEX", "LOCAL_RANK"):
        value = _int(env, key)
        if value is not None:
            return value, key
    return os.getpid(), "pid"


def local_rank(env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """This worker's rank among the workers of its machine, and where it came from."""
    env = os.environ if env is None else env
    for key in ("LOCAL_RANK", "SLURM_LOCALID"):
        value = _int(env, key)
        if value is not None:
            return value, key
    return 0, "default"


def worker_device(env: Mapping[str, str] | None = None, n_gpus: int | None = None) -> str:
    """``cuda:K`` for this worker's GPU (``K = local rank mod visible GPUs``) or ``cpu``."""
    if n_gpus is None:
        n_gpus = visible_gpus()
    if n_gpus < 1:
        return "cpu"
    rank, _ = local_rank(env)
    return f"cuda:{rank % n_gpus}"


def visible_gpus() -> int:
    """GPUs this process may use (``CUDA_VISIBLE_DEVICES`` applies); 0 without CUDA."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no usable CUDA means the CPU
        return 0
