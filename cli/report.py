"""``ohgw-optuna report``: the bench grid's report (tables, statistics, criteria, plots).

Registered in :mod:`cli.main` with ``app.add_command(report)``.
"""

from __future__ import annotations

import os
import pathlib
import shlex

import click

from optuna_ohgw.storage import StorageError, is_journal, journal_path, open_storage, redact

from ._common import bench_url, fail


@click.command()
@click.option(
    "--storage",
    multiple=True,
    help="Storage URL of the bench grid (default: journal:runs/bench/TASK.journal with --task); "
    "repeat it to report on several grids at once.",
)
@click.option("--task", default=None, help="Only the cells of this task.")
@click.option(
    "--study",
    "study_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="The cells `bench --study FILE` ran: --task set to the file's name.",
)
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
@click.option(
    "--summary",
    is_flag=True,
    help="Also write OUT/summary.md: time to target at several targets against vanilla and "
    "random-sign, the step diagnostic and a verdict (plots in OUT/NAME).",
)
@click.option(
    "--targets",
    multiple=True,
    help="TASK=T1,T2,... targets of the summary (default: the ones fixed in "
    "optuna_ohgw.evidence.summary.TARGETS).",
)
@click.option(
    "--notes",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Markdown file put in summary.md as 'In plain words' (your reading of it); repeat it "
    "to put several one after the other.",
)
@click.option(
    "--finished-only",
    is_flag=True,
    help="Leave out the cells of a grid that are still running (or were stopped mid-cell).",
)
@click.option(
    "--clock",
    type=click.Choice(["compute", "epochs"]),
    default="compute",
    show_default=True,
    help="The summary's deciding clock (the seed's criterion is on compute; epochs is machine "
    "independent where other jobs shared the cores).",
)
@click.option(
    "--planned-seeds",
    default=20,
    show_default=True,
    help="Seeds the grid is meant to have (the summary says when it has fewer).",
)
@click.option(
    "--question",
    type=click.Choice(["issue19", "issue27"]),
    default="issue27",
    show_default=True,
    help="The primary question the summary answers and the default step rule it decides, as "
    "declared before the data (optuna_ohgw.evidence.question).",
)
@click.option(
    "--commits",
    "commits_file",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="TOML file whose [commits] table says which commit ran each group's cells that did "
    'not record it ("TASK GROUP" = "COMMIT"), shown in the summary\'s lead table.',
)
def report(
    storage: tuple[str, ...],
    task: str | None,
    study_file: str | None,
    name: str | None,
    out: str,
    dashboard_notes: bool,
    summary: bool,
    targets: tuple[str, ...],
    notes: tuple[str, ...],
    finished_only: bool,
    clock: str,
    planned_seeds: int,
    question: str,
    commits_file: str | None,
) -> None:
    """Write reports/NAME/: report.md, results.csv and PNG plots of the bench grid."""
    from optuna_ohgw.evidence.report import compare, load_cells, row_of, write_report

    if study_file is not None:
        from optuna_ohgw.studyfile import StudyFileError, load_study_file

        try:
            task = load_study_file(study_file).name
        except StudyFileError as err:
            fail(str(err))
    if not storage:
        if task is None:
            fail("give --storage URL, or --task TASK for journal:runs/bench/TASK.journal")
        storage = (bench_url(task),)
    for url in storage:
        if is_journal(url) and not journal_path(url).exists():
            fail(f"no journal file {journal_path(url)}; run the bench grid first")
    goals = _targets(targets)
    commits = _commits(commits_file) if commits_file else None
    name = name or task or "bench"
    args = ["ohgw-optuna", "report"]
    for url in storage:
        args += ["--storage", _portable(url)]
    if task is not None:
        args += ["--task", task]
    args += ["--name", name, "--out", os.path.relpath(out)]
    if finished_only:
        args += ["--finished-only"]
    if summary:
        args += ["--summary", *(f"--targets={t}" for t in targets)]
        args += ["--clock", clock, "--planned-seeds", str(planned_seeds)]
        for note in notes:
            args += ["--notes", os.path.relpath(note)]
        args += ["--question", question]
        if commits_file:
            args += ["--commits", os.path.relpath(commits_file)]
    command = shlex.join(args)
    per_storage = []
    try:
        for url in storage:
            opened = open_storage(url, heartbeat=False, create=False)
            per_storage.append((opened, load_cells(opened, task, finished_only=finished_only)))
    except StorageError as err:
        fail(str(err))
        return
    cells = [c for _, own in per_storage for c in own]
    if not cells:
        what = f" of task {task!r}" if task else ""
        fail(f"no bench-* studies{what} in {', '.join(redact(u) for u in storage)}")
    rows = [row_of(c) for c in cells]
    path = write_report(rows, cells, pathlib.Path(out) / name, command)
    click.echo(f"{len(cells)} cells; wrote {path} and {path.parent / 'results.csv'}")
    if summary:
        from optuna_ohgw.evidence.summary import QUESTIONS, write_summary

        done = write_summary(
            cells,
            pathlib.Path(out) / "summary.md",
            pathlib.Path(out) / name,
            command,
            targets=goals,
            planned_seeds=planned_seeds,
            clock=clock,
            notes="\n\n".join(pathlib.Path(n).read_text().strip() for n in notes) or None,
            question=QUESTIONS[question],
            commits=commits,
        )
        click.echo(f"wrote {done}")
    if dashboard_notes:
        from optuna_ohgw.evidence.notes import publish_notes

        comps = compare(rows)
        n = sum(publish_notes(s, own, comps, str(path)) for s, own in per_storage)
        click.echo(f"saved an optuna-dashboard note on {n} studies")


def _portable(url: str) -> str:
    """The URL as the committed report shows it: a journal's path relative to the working
    folder (no path of this machine), any password redacted."""
    if is_journal(url) and journal_path(url).is_absolute():
        return f"journal:{os.path.relpath(journal_path(url))}"
    return redact(url)


def _targets(specs: tuple[str, ...]) -> dict[str, tuple[float, ...]]:
    """``("mnist1d=0.9,0.95", ...)`` over the fixed defaults; a bad spec is a one-line error."""
    from optuna_ohgw.evidence.summary import TARGETS

    goals = dict(TARGETS)
    for spec in specs:
        task, sep, values = spec.partition("=")
        try:
            if not sep or not task:
                raise ValueError
            goals[task] = tuple(sorted(float(v) for v in values.split(",") if v.strip()))
            if not goals[task]:
                raise ValueError
        except ValueError:
            fail(f"--targets {spec!r}: write TASK=T1,T2,... (for example mnist1d=0.9,0.95,0.97)")
    return goals


def _commits(path: str) -> dict[str, str]:
    """The ``[commits]`` table of a TOML file; anything else is a one-line error."""
    import tomllib

    try:
        table = tomllib.loads(pathlib.Path(path).read_text()).get("commits")
    except (OSError, tomllib.TOMLDecodeError) as err:
        fail(f"--commits {path}: {err}")
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        fail(f'--commits {path}: write a [commits] table of "TASK GROUP" = "COMMIT" strings')
    return dict(table)
