"""``ohgw-optuna report``: the bench grid's report (tables, statistics, criteria, plots).

Registered in :mod:`cli.main` with ``app.add_command(report)``.
"""

from __future__ import annotations

import pathlib
import shlex

import click

from optuna_ohgw.storage import StorageError, is_journal, journal_path, open_storage, redact

from ._common import bench_url, fail


@click.command()
@click.option(
    "--storage",
    default=None,
    help="Storage URL of the bench grid (default: journal:runs/bench/TASK.journal with --task).",
)
@click.option("--task", default=None, help="Only the cells of this task.")
@click.option("--name", default=None, help="Report folder name (default: TASK, or 'bench').")
@click.option(
    "--out",
    default="reports",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder holding the reports.",
)
@click.option(
    "--dashboard-notes",
    is_flag=True,
    help="Also save a short summary as the optuna-dashboard note of every cell's study.",
)
def report(
    storage: str | None, task: str | None, name: str | None, out: str, dashboard_notes: bool
) -> None:
    """Write reports/NAME/: report.md, results.csv and PNG plots of the bench grid."""
    from optuna_ohgw.evidence.report import compare, load_cells, row_of, write_report

    if storage is None:
        if task is None:
            fail("give --storage URL, or --task TASK for journal:runs/bench/TASK.journal")
        storage = bench_url(task)
    if is_journal(storage) and not journal_path(storage).exists():
        fail(f"no journal file {journal_path(storage)}; run the bench grid first")
    name = name or task or "bench"
    args = ["ohgw-optuna", "report", "--storage", redact(storage)]
    if task is not None:
        args += ["--task", task]
    args += ["--name", name, "--out", out]
    command = shlex.join(args)
    try:
        opened = open_storage(storage, heartbeat=False)
        cells = load_cells(opened, task)
    except StorageError as err:
        fail(str(err))
        return
    if not cells:
        what = f" of task {task!r}" if task else ""
        fail(f"no bench-* studies{what} in {redact(storage)}")
    rows = [row_of(c) for c in cells]
    path = write_report(rows, cells, pathlib.Path(out) / name, command)
    click.echo(f"{len(cells)} cells; wrote {path} and {path.parent / 'results.csv'}")
    if dashboard_notes:
        from optuna_ohgw.evidence.notes import publish_notes

        n = publish_notes(opened, cells, compare(rows), str(path))
        click.echo(f"saved an optuna-dashboard note on {n} studies")
