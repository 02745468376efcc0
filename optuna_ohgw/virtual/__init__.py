"""Virtual workers: N simulated asynchronous workers in one process, deterministically.

The training is real and the workers use the real shared storage, sampler, pruner and
promotion schedulers; only the parallelism is simulated. Each worker has a virtual clock,
advanced by the work it does, and the next event always belongs to the worker whose clock is
earliest (ties: lower worker index first), so a run is the same on every machine.

* :class:`Baton`: who runs next.
* :class:`VirtualWorkerStorage`: a worker's view of the shared storage (a turn per report).
* :func:`run_virtual`: any worker bodies; :func:`optimize_virtual`: ``study.optimize`` on N
  virtual workers. ``optuna_ohgw.runner.run_study_virtual`` runs a study file's workers.
"""

from optuna_ohgw.virtual._baton import VIRTUAL_CLOCKS, Baton, VirtualClock
from optuna_ohgw.virtual._run import WorkerBody, optimize_virtual, run_virtual
from optuna_ohgw.virtual._storage import VIRTUAL_ATTR, VirtualWorkerStorage

__all__ = [
    "VIRTUAL_ATTR",
    "VIRTUAL_CLOCKS",
    "Baton",
    "VirtualClock",
    "VirtualWorkerStorage",
    "WorkerBody",
    "optimize_virtual",
    "run_virtual",
]
