"""The benchmark grid: task x scheduler x variant x seed, each cell a separate study.

A *cell* is one study on the grid's storage. Its configuration is the study file
``studies/{task}-{scheduler}.toml`` with the cell's seed, the grid's budget overrides and the
cell's *variant* (how OHGW is set up) applied. It is run with :func:`runner.run_study`, which
hands the worker processes exactly this configuration (variant and name included) as JSON.

Workers: a cell names how many workers it runs with (``-w8`` in its name when more than one).
With ``virtual=True`` they are simulated (:func:`runner.run_study_virtual`: N workers in one
process, events ordered by virtual clocks; a cell is the same on every machine and every rerun),
else they are worker processes. A virtual cell stopped part-way is deleted and rerun whole when
the grid resumes (its workers' in-memory states are gone, so only a whole rerun is the same run).

Pairing: every variant of a seed has the same ``seed`` in its configuration, so the base sampler
(``seed * 1000 + worker``), the trial models' initial weights and the data order
(``trial_seed(seed, trial.number)``) are the same across variants. With one worker per cell the
first trial's raw (pre-nudge) values are therefore identical across variants; later trials
diverge as soon as the variants' results (and so TPE's models) differ. With several real workers
the trial -> worker assignment is racy, so pairing holds per worker stream, not per trial number;
with virtual workers it is not racy, and the first ``workers`` draws are paired exactly.

Budget: every arm gets the same ``[budget]``. The probe runs inside the trial's setup, so it is
charged to the arms that run it (``probe-only`` included) on the ``compute`` and ``wall`` clocks
of :mod:`optuna_ohgw.evidence.metrics` and against a ``wall_seconds`` budget; a trial or epoch
budget counts trials/epochs, which the probe does not change.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from optuna_ohgw.evidence.provenance import code_version, machine
from optuna_ohgw.studyfile import (
    PROMOTION_SCHEDULERS,
    SAMPLERS,
    SCHEDULERS,
    STUDY_DIRS,
    OHGWConfig,
    StudyConfig,
    StudyFileError,
    apply_overrides,
    find_study_file,
    load_study_file,
)

DEFAULT_STUDY_DIRS = STUDY_DIRS
DONE_ATTR = "ohgw.bench.done"
"""Study user attr set when a cell's run ended with its budget spent (or its wall time used)."""
CELL_ATTR = "ohgw.bench.cell"
"""Study user attr: ``{"task", "scheduler", "variant", "seed", "sampler", "workers"}``."""
WORKERS_ATTR = "ohgw.bench.workers"
"""Study user attr: ``{"workers": N, "virtual": bool, "clock": "epochs" | "compute" | None}``,
with ``"ties": "index" | "seeded"`` for virtual cells of several workers since issue 27.
Cells without it (issue 13's) ran with one real worker."""
CODE_ATTR = "ohgw.bench.code"
"""Study user attr set when a cell's run ends: ``{"commit", "machine", "wall_seconds"}``, the
code that ran it, the machine in words and the run's wall time
(:mod:`optuna_ohgw.evidence.provenance`). Cells before issue 27's second stage lack it: the
grids' ``COMMIT`` files say which commit ran them."""


def _off(c: OHGWConfig) -> OHGWConfig:
    return dataclasses.replace(c, enabled=False)


VARIANTS: dict[str, Callable[[OHGWConfig], OHGWConfig]] = {
    "vanilla": _off,
    "ohgw-raw": lambda c: dataclasses.replace(c, enabled=True, step="raw"),
    "ohgw-normalized": lambda c: dataclasses.replace(c, enabled=True, step="normalized"),
    "probe-only": lambda c: dataclasses.replace(c, enabled=True, step="none"),
    "random-sign": lambda c: dataclasses.replace(
        c, enabled=True, step="random-sign", base="normalized"
    ),
    "flipped": lambda c: dataclasses.replace(c, enabled=True, step="flipped", base="normalized"),
    "line-search": lambda c: dataclasses.replace(
        c, enabled=True, step="line-search", base="normalized"
    ),
    "toward-middle": lambda c: dataclasses.replace(c, enabled=True, step="toward-middle"),
    "re-probe": lambda c: dataclasses.replace(c, enabled=True, step="normalized", reprobe=True),
}
"""Variant name -> how it changes the study file's ``[ohgw]`` table."""
DEFAULT_VARIANTS = ("vanilla", "ohgw-raw", "ohgw-normalized", "probe-only", "random-sign")
DEFAULT_SCHEDULERS = ("asha", "hyperband", "pasha")
TIES = ("index", "seeded")
"""The virtual executor's tie rules (:attr:`Cell.ties`)."""


@dataclasses.dataclass(frozen=True)
class Cell:
    task: str
    scheduler: str
    variant: str
    seed: int
    sampler: str = "tpe"
    """The base sampler; TPE cells keep the names they had before the sampler axis existed."""
    workers: int = 1
    """Workers the cell runs with; one-worker cells keep the names they had before."""
    ties: str = "index"
    """How virtual workers whose clocks tie take turns (:data:`TIES`): ``"index"``, the lower
    worker first (issue 19's grid; names ``-wN``), or ``"seeded"``, a random order seeded by the
    cell's seed (names ``-wNr``). One worker has no ties: its name never carries it."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise StudyFileError(f"a cell needs at least 1 worker, got {self.workers}")
        if self.ties not in TIES:
            raise StudyFileError(f"unknown ties {self.ties!r}; choose from {', '.join(TIES)}")
        if self.sampler not in SAMPLERS:
            raise StudyFileError(
                f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}"
            )
        if self.scheduler not in SCHEDULERS:
            raise StudyFileError(
                f"unknown scheduler {self.scheduler!r}; choose from {', '.join(SCHEDULERS)}"
            )
        if self.variant not in VARIANTS:
            raise StudyFileError(
                f"unknown variant {self.variant!r}; choose from {', '.join(VARIANTS)}"
            )

    @property
    def study_name(self) -> str:
        """The study's name in the storage. The variant comes last so that the vanilla cell's
        name is exactly what :attr:`StudyConfig.study_name` gives (it appends ``-vanilla``)."""
        sampler = "" if self.sampler == "tpe" else f"-{self.sampler}"
        workers = "" if self.workers == 1 else f"-w{self.workers}"
        if self.workers > 1 and self.ties == "seeded":
            workers += "r"
        return f"bench-{self.task}-{self.scheduler}{sampler}{workers}-s{self.seed}-{self.variant}"

    @property
    def tie_seed(self) -> int | None:
        """The seed of the virtual executor's order among tied workers (``None``: by index)."""
        return self.seed if self.ties == "seeded" and self.workers > 1 else None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def grid_cells(
    task: str,
    schedulers: Sequence[str],
    variants: Sequence[str],
    seeds: Iterable[int],
    samplers: Sequence[str] = ("tpe",),
    workers: int = 1,
    ties: str = "index",
) -> list[Cell]:
    """All cells, seed-major (then scheduler, sampler, variant): a grid stopped part-way still
    has every arm of the seeds it finished, i.e. complete pairs."""
    return [
        Cell(task, s, v, seed, sampler, workers, ties)
        for seed in seeds
        for s in schedulers
        for sampler in samplers
        for v in variants
    ]


def cell_config(
    cell: Cell,
    budget_overrides: Mapping[str, Any] | None = None,
    study_dirs: Sequence[pathlib.Path] = DEFAULT_STUDY_DIRS,
    study_file: pathlib.Path | None = None,
) -> StudyConfig:
    """The cell's configuration: ``{task}-{scheduler}.toml`` + seed + budget + variant + name.

    With ``study_file`` (a user's study, e.g. of a recipe: ``bench --study mine.toml``) the
    cell's task is that file's ``name`` and the file's scheduler is swapped for the cell's
    (same ``min_resource`` and ``reduction_factor``). ``path`` is still the source study file.
    """
    if study_file is not None:
        config = load_study_file(study_file)
        if config.name != cell.task:
            raise StudyFileError(f"{study_file}: is name={config.name}, expected {cell.task}")
        if config.scheduler.name != cell.scheduler:
            config = config.replace(
                scheduler=dataclasses.replace(config.scheduler, name=cell.scheduler)
            )
        path = study_file
    else:
        path = find_study_file(f"{cell.task}-{cell.scheduler}", study_dirs)
        config = load_study_file(path)
    if (
        study_file is None and config.task != cell.task
    ) or config.scheduler.name != cell.scheduler:
        raise StudyFileError(
            f"{path}: is task={config.task} scheduler={config.scheduler.name}, expected "
            f"task={cell.task} scheduler={cell.scheduler}"
        )
    overrides: dict[str, Any] = {"seed": cell.seed}
    if budget_overrides:
        overrides["budget"] = dict(budget_overrides)
    config = apply_overrides(config, overrides)
    ohgw = VARIANTS[cell.variant](config.ohgw)
    name = cell.study_name
    if not ohgw.enabled:
        name = name.removesuffix("-vanilla")  # study_name appends it again
    config = config.replace(ohgw=ohgw, name=name)
    if cell.sampler != config.sampler:  # the file's sampler options belong to its sampler
        config = config.replace(sampler=cell.sampler, sampler_options={})
    if ohgw.reprobe and config.scheduler.name not in PROMOTION_SCHEDULERS:
        raise StudyFileError(
            f"variant {cell.variant!r} re-probes at promotions: use it with "
            f"{', '.join(PROMOTION_SCHEDULERS)}, not {config.scheduler.name}"
        )
    assert config.study_name == cell.study_name
    return config


# ----- running the grid --------------------------------------------------------------------


@dataclasses.dataclass
class CellResult:
    cell: Cell
    status: str  # "skipped" (already finished), "done", "incomplete"
    summary: Any = None  # runner.RunSummary when the cell ran


CellFn = Callable[[int, int, Cell, str], None]
"""``on_cell(index, total, cell, status)``: status is "running", "skipped", "done" or
"incomplete"; called before and after each cell."""


def cell_finished(config: StudyConfig, storage: Any, *, virtual: bool = False) -> bool:
    """True when the cell's study exists on ``storage`` and is finished: marked done by
    :func:`run_grid`, or (a cell real workers ran) its budget spent with no trial still
    RUNNING. A virtual cell is finished only when marked: stopped part-way, even after its last
    configuration was created, it reruns whole."""
    import optuna
    from optuna.trial import TrialState

    from optuna_ohgw.runner import budget_spent

    try:
        study = optuna.load_study(study_name=config.study_name, storage=storage)
    except KeyError:
        return False
    if study.user_attrs.get(DONE_ATTR):
        return True
    if virtual:
        return False
    trials = study.get_trials(deepcopy=False)
    running = any(t.state == TrialState.RUNNING for t in trials)
    return budget_spent(config, trials, study) and not running


def run_grid(
    cells: Sequence[Cell],
    storage_url: str,
    n_workers: int | None = None,
    budget: Mapping[str, Any] | None = None,
    *,
    virtual: bool = False,
    clock: str = "epochs",
    threads: int | None = None,
    grid_dir: str | pathlib.Path = "runs/bench",
    study_dirs: Sequence[pathlib.Path] = DEFAULT_STUDY_DIRS,
    data_dir: str | None = None,
    download: bool = False,
    checkpoint_dir: str | pathlib.Path | None = None,
    on_cell: CellFn | None = None,
    on_progress: Callable[[Any], None] | None = None,
    study_file: pathlib.Path | None = None,
) -> list[CellResult]:
    """Run every cell not finished yet (resuming a cell that was interrupted), in the given
    order; return each cell's status. Each cell runs with its own ``workers``: worker processes,
    or with ``virtual`` simulated workers on ``clock`` (a virtual cell that was interrupted is
    rerun whole; ``threads``: torch threads of the virtual run). ``n_workers``, if given, must
    equal every cell's ``workers``. Worker logs go to ``grid_dir/logs``, checkpoints (promotion
    schedulers) to ``grid_dir/checkpoints``; ``study_file``: the cells of a user's study (see
    :func:`cell_config`)."""
    import optuna

    from optuna_ohgw.runner import budget_spent, run_study, run_study_virtual
    from optuna_ohgw.storage import open_storage

    if n_workers is not None and any(c.workers != n_workers for c in cells):
        raise ValueError(f"n_workers={n_workers} but the cells name other worker counts")
    grid_dir = pathlib.Path(grid_dir)
    checkpoint_dir = checkpoint_dir or grid_dir / "checkpoints"
    commit, where = code_version(), machine()
    # Every configuration first: a bad study file or budget fails before anything runs.
    configs = [cell_config(cell, budget, study_dirs, study_file) for cell in cells]
    storage = open_storage(storage_url)
    results: list[CellResult] = []
    total = len(cells)
    for index, (cell, config) in enumerate(zip(cells, configs)):
        if cell_finished(config, storage, virtual=virtual):
            results.append(CellResult(cell, "skipped"))
            if on_cell:
                on_cell(index, total, cell, "skipped")
            continue
        if on_cell:
            on_cell(index, total, cell, "running")
        start = time.monotonic()
        if virtual:
            _drop_partial(config.study_name, storage, str(checkpoint_dir))
            summary = run_study_virtual(
                config,
                storage_url,
                cell.workers,
                clock=clock,  # type: ignore[arg-type]
                tie_seed=cell.tie_seed,
                data_dir=data_dir,
                download=download,
                artifacts=str(checkpoint_dir),
                threads=threads,
            )
        else:
            summary = run_study(
                config,
                storage_url,
                cell.workers,
                data_dir=data_dir,
                download=download,
                log_dir=grid_dir / "logs",
                artifacts=str(checkpoint_dir),
                on_progress=on_progress,
            )
        study = optuna.load_study(study_name=config.study_name, storage=storage)
        if study.user_attrs.get(CELL_ATTR) != cell.as_dict():
            study.set_user_attr(CELL_ATTR, cell.as_dict())
        how = {"workers": cell.workers, "virtual": virtual, "clock": clock if virtual else None}
        if virtual and cell.workers > 1:
            how["ties"] = cell.ties
        if study.user_attrs.get(WORKERS_ATTR) != how:
            study.set_user_attr(WORKERS_ATTR, how)
        code = {"commit": commit, "machine": where, "wall_seconds": time.monotonic() - start}
        study.set_user_attr(CODE_ATTR, code)
        spent = budget_spent(config, study.get_trials(deepcopy=False))
        # A wall-clock budget is never "spent" by trial counts: the run ending is its end.
        status = "done" if spent or config.budget.wall_seconds else "incomplete"
        if status == "done":
            study.set_user_attr(DONE_ATTR, True)
        results.append(CellResult(cell, status, summary))
        if on_cell:
            on_cell(index, total, cell, status)
    return results


def _drop_partial(study_name: str, storage: Any, artifacts: str) -> None:
    """Delete a study a virtual run left unfinished, and its checkpoints in ``artifacts`` (the
    checkpoints first: a kill between leaves the study, dropped again next time), so that the
    cell reruns whole."""
    import optuna

    from optuna_ohgw.artifact_store import clear_study

    try:
        optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return
    clear_study(artifacts, study_name)
    optuna.delete_study(study_name=study_name, storage=storage)
