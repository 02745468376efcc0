"""``ohgw-optuna bench``: the task x scheduler x variant x seed grid, one study per cell.

Register it on the main group with ``app.add_command(bench)``. Heavy imports (torch, the
runner) happen inside the command, as in ``cli/main.py``.
"""

from __future__ import annotations

import pathlib
from typing import Any

import click

from optuna_ohgw.evidence.grid import DEFAULT_SCHEDULERS, DEFAULT_VARIANTS, VARIANTS
from optuna_ohgw.storage import StorageError, open_storage, redact
from optuna_ohgw.studyfile import SCHEDULERS, TASK_NAMES, StudyFileError

from ._common import STUDY_DIRS, bench_url, fail, parse_budget


def _split(value: str, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise StudyFileError(f"--{what}: give a comma-separated list")
    if len(set(items)) != len(items):
        raise StudyFileError(f"--{what}: {value!r} names an entry twice")
    return items


@click.command()
@click.option("--task", default=None, type=click.Choice(TASK_NAMES), help="A built-in task.")
@click.option(
    "--study",
    "study_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Or your own study file (e.g. of a recipe): its cells are named after its `name`.",
)
@click.option(
    "--schedulers",
    default=None,
    help=f"Comma-separated: {', '.join(SCHEDULERS)} (studies/TASK-SCHEDULER.toml; with --study "
    f"the file's settings under each scheduler). Default: {','.join(DEFAULT_SCHEDULERS)}, or "
    "the --study file's scheduler.",
)
@click.option(
    "--variants",
    default=",".join(DEFAULT_VARIANTS),
    show_default=True,
    help=f"Comma-separated: {', '.join(VARIANTS)} (re-probe: promotion schedulers only).",
)
@click.option(
    "--samplers",
    default="tpe",
    show_default=True,
    help="Comma-separated base samplers: tpe, random, cmaes, gp, qmc (each arm of a seed uses "
    "the same sampler seed, so arms stay paired).",
)
@click.option("--seeds", default=3, show_default=True, help="Seeds 0..N-1 (paired across arms).")
@click.option(
    "--first-seed",
    default=0,
    show_default=True,
    help="Start the seeds here: FIRST..FIRST+N-1 (fresh seeds for a replication).",
)
@click.option(
    "--budget",
    multiple=True,
    help="Every cell's budget: n_trials=N, total_epochs=N, wall_seconds=S.",
)
@click.option("--n-workers", default=1, show_default=True, help="Worker processes per cell.")
@click.option(
    "--virtual-workers",
    default=None,
    type=int,
    help="Simulate N asynchronous workers per cell in this process instead (deterministic: "
    "events ordered by virtual clocks; real training, one torch thread).",
)
@click.option(
    "--virtual-clock",
    type=click.Choice(["epochs", "compute"]),
    default="epochs",
    show_default=True,
    help="What advances a virtual worker's clock: each epoch 1 (bit-reproducible), or the CPU "
    "seconds of its epochs and probes.",
)
@click.option(
    "--virtual-ties",
    type=click.Choice(["seeded", "index"]),
    default="seeded",
    show_default=True,
    help="Which of several virtual workers whose clocks tie goes first: a random order seeded "
    "by the cell's seed (cells named -wNr), or the lower worker (issue 19's grid, -wN), which "
    "lets worker 0's first trial reach every rung first.",
)
@click.option("--storage", default=None, help="Storage URL (default: runs/bench/TASK.journal).")
@click.option(
    "--grid-dir",
    default=None,
    help="Cells' study files, logs, checkpoints (default: runs/bench/TASK).",
)
@click.option(
    "--studies-dir",
    default=None,
    help="Folder with TASK-SCHEDULER.toml (default: ./studies, then the package's).",
)
@click.option(
    "--data-dir",
    default=None,
    help="Dataset folder (CIFAR-10: holds cifar-10-batches-py; Fashion-MNIST: the IDX files, "
    "default /usr/share/datasets/fashion-mnist).",
)
@click.option(
    "--download", is_flag=True, help="Let torchvision download CIFAR-10 into --data-dir."
)
def bench(
    task: str | None,
    study_file: str | None,
    schedulers: str | None,
    variants: str,
    samplers: str,
    seeds: int,
    first_seed: int,
    budget: tuple[str, ...],
    n_workers: int,
    virtual_workers: int | None,
    virtual_clock: str,
    virtual_ties: str,
    storage: str | None,
    grid_dir: str | None,
    studies_dir: str | None,
    data_dir: str | None,
    download: bool,
) -> None:
    """Run the benchmark grid, one study per cell (rerun to resume; finished cells skip)."""
    import optuna
    from tqdm import tqdm

    from optuna_ohgw.evidence.grid import cell_config, grid_cells, run_grid
    from optuna_ohgw.runner import check_trainer
    from optuna_ohgw.studyfile import load_study_file
    from optuna_ohgw.tasks import DatasetMissingError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if seeds < 1:
            raise StudyFileError(f"--seeds must be at least 1, got {seeds}")
        if first_seed < 0:
            raise StudyFileError(f"--first-seed must be at least 0, got {first_seed}")
        if n_workers < 1:
            raise StudyFileError(f"--n-workers must be at least 1, got {n_workers}")
        if virtual_workers is not None and virtual_workers < 1:
            raise StudyFileError(f"--virtual-workers must be at least 1, got {virtual_workers}")
        if virtual_workers is not None and n_workers != 1:
            raise StudyFileError("give --n-workers or --virtual-workers, not both")
        if (task is None) == (study_file is None):
            raise StudyFileError("give --task TASK (a built-in task) or --study FILE.toml")
        source = pathlib.Path(study_file) if study_file else None
        if source is not None:
            mine = load_study_file(source)
            task = mine.name
            schedulers = schedulers or mine.scheduler.name
        assert task is not None
        cells = grid_cells(
            task,
            _split(schedulers or ",".join(DEFAULT_SCHEDULERS), "schedulers"),
            _split(variants, "variants"),
            range(first_seed, first_seed + seeds),
            _split(samplers, "samplers"),
            workers=virtual_workers or n_workers,
            ties=virtual_ties if virtual_workers else "index",
        )
        dirs = (pathlib.Path(studies_dir),) if studies_dir else STUDY_DIRS
        overrides = parse_budget(budget)
        # Every study file and the budget checked before anything runs; the data or the recipe
        # once.
        configs = [cell_config(cell, overrides, dirs, source) for cell in cells]
        url = storage or bench_url(task)
        folder = pathlib.Path(grid_dir) if grid_dir else pathlib.Path("runs") / "bench" / task
        probed = next((c for c in configs if c.ohgw.enabled), configs[0])
        check_trainer(probed, data_dir=data_dir, download=download)
        open_storage(url)
    except (StudyFileError, StorageError, DatasetMissingError) as err:
        fail(str(err))

    how = (
        f"{virtual_workers} virtual worker(s) per cell ({virtual_clock} clock)"
        if virtual_workers
        else f"{n_workers} worker(s) per cell"
    )
    click.echo(f"bench {task}: {len(cells)} cells ({seeds} seed(s)) on {redact(url)} with {how}")
    bar = tqdm(total=len(cells), unit="cell", desc=f"bench {task}", dynamic_ncols=True)
    counts = {"skipped": 0, "done": 0, "incomplete": 0}

    def on_cell(index: int, total: int, cell: Any, status: str) -> None:
        if status == "running":
            bar.set_postfix_str(cell.study_name)
            return
        counts[status] += 1
        bar.update(1)
        bar.set_postfix_str(f"{cell.study_name} {status}")

    try:
        results = run_grid(
            cells,
            url,
            budget=overrides,
            virtual=virtual_workers is not None,
            clock=virtual_clock,
            threads=1 if virtual_workers is not None else None,
            grid_dir=folder,
            study_dirs=dirs,
            data_dir=data_dir,
            download=download,
            on_cell=on_cell,
            study_file=source,
        )
    except KeyboardInterrupt:
        bar.close()
        fail("interrupted: workers stopped; rerun the same command to resume the grid")
    except (RuntimeError, StudyFileError, StorageError) as err:
        bar.close()
        fail(str(err))
    bar.close()
    click.echo(
        f"{counts['done']} cell(s) run, {counts['skipped']} already finished, "
        f"{counts['incomplete']} incomplete"
    )
    for r in results:
        if r.status == "incomplete":
            click.echo(f"incomplete: {r.cell.study_name} (see {folder / 'logs'})")


if __name__ == "__main__":
    bench()
