"""Entry point of the ``ohgw-optuna`` command: parses, validates, calls the library."""

from __future__ import annotations

import sys

import click
import optuna

import optuna_ohgw
from optuna_ohgw.storage import (
    StorageError,
    default_url,
    normalize_url,
    open_storage,
    redact,
    storage_file,
)
from optuna_ohgw.studyfile import StudyConfig, StudyFileError
from optuna_ohgw.studyfile import load_study_file as _load

from ._common import (
    STUDY_DIRS,
    fail,
    set_storage_patience,
    storage_patience_option,
    study_config,
    user_errors,
)


@click.group()
@click.version_option(optuna_ohgw.__version__, prog_name="ohgw-optuna")
def app() -> None:
    """One-Shot Hyper-Gradient Warm-Starts for Optuna."""


@app.command()
@click.option("--study", "study", required=True, help="Study name in studies/ or a .toml path.")
@click.option("--n-workers", default=1, show_default=True, help="Worker processes (one per GPU).")
@click.option("--storage", default=None, help="Storage URL (default: runs/STUDY.journal).")
@click.option("--seed", type=int, default=None, help="Override the study file's seed.")
@click.option(
    "--budget",
    multiple=True,
    help="Override the budget: n_trials=N, total_epochs=N, wall_seconds=S.",
)
@click.option("--no-ohgw", is_flag=True, help="Run the vanilla twin (study name + '-vanilla').")
@click.option(
    "--data-dir",
    default=None,
    help="Dataset folder (CIFAR-10: holds cifar-10-batches-py; Fashion-MNIST: the IDX files, "
    "default /usr/share/datasets/fashion-mnist).",
)
@click.option(
    "--download", is_flag=True, help="Let torchvision download CIFAR-10 into --data-dir."
)
@click.option(
    "--artifacts",
    "--checkpoint-dir",
    "artifacts",
    default=None,
    help="Where paused trials keep checkpoints, seen by every worker: a folder or "
    "s3://BUCKET/PREFIX (default: the study file's `artifacts`, else runs/checkpoints).",
)
@storage_patience_option
def run(
    study: str,
    n_workers: int,
    storage: str | None,
    seed: int | None,
    budget: tuple[str, ...],
    no_ohgw: bool,
    data_dir: str | None,
    download: bool,
    artifacts: str | None,
    storage_patience: float | None,
) -> None:
    """Run a named study with N worker processes on one storage (rerun to resume)."""
    from tqdm import tqdm

    from optuna_ohgw.artifact_store import DEFAULT_ARTIFACTS, open_artifact_store
    from optuna_ohgw.runner import (
        RunFailedError,
        RunSummary,
        check_trainer,
        exit_now,
        is_promotion,
        run_study,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with user_errors():
        set_storage_patience(storage_patience)
        config = study_config(study, seed, no_ohgw, budget)
        if n_workers < 1:
            raise StudyFileError(f"--n-workers must be at least 1, got {n_workers}")
        url = storage or default_url(config.study_name)
        check_trainer(config, data_dir=data_dir, download=download)
        open_storage(url)  # an unreachable storage is one line, before any progress output
        total = config.budget.n_trials or None
        promotion = is_promotion(config)
        artifacts = artifacts or config.artifacts or DEFAULT_ARTIFACTS
        if promotion:  # a bad store too, and before the study is created
            open_artifact_store(artifacts, config.study_name)
        click.echo(f"study {config.study_name} on {redact(url)} with {n_workers} worker(s)")
        bar = tqdm(total=total, unit="trial", desc=config.study_name, dynamic_ncols=True)

        def progress(summary: RunSummary) -> None:
            c = summary.counts
            # Promotion schedulers count configurations (a paused trial is one of its segments).
            bar.n = summary.configurations if promotion else c["complete"] + c["pruned"]
            if bar.total is not None and bar.n > bar.total:
                bar.total = bar.n  # workers finish the trials in flight when the budget is hit
            best = "-" if summary.best_value is None else f"{summary.best_value:.4f}"
            bar.set_postfix_str(
                f"complete={c['complete']} pruned={c['pruned']} running={c['running']} "
                f"failed={c['fail']} best={best}"
            )

        try:
            summary = run_study(
                config,
                url,
                n_workers,
                data_dir=data_dir,
                download=download,
                artifacts=artifacts,
                on_progress=progress,
            )
        except KeyboardInterrupt:
            bar.close()
            # At once: the interpreter's shutdown (torch loaded) can take seconds.
            exit_now("error: interrupted: workers stopped, their trials enqueued again; rerun "
                     "the same command to resume the study")  # fmt: skip
        except RunFailedError as err:  # what finished is kept; say so, then fail
            progress(err.summary)
            bar.close()
            click.echo(err.summary.format())
            fail(str(err), code=1)
        except RuntimeError as err:
            bar.close()
            fail(str(err))
        progress(summary)
        bar.close()
        click.echo(summary.format())


@app.command()
def studies() -> None:
    """List the study files with their task, scheduler and budget."""
    rows = []
    seen: set[str] = set()
    for folder in STUDY_DIRS:
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            if path.stem in seen:
                continue
            seen.add(path.stem)
            try:
                c = _load(path)
            except StudyFileError as err:
                rows.append((path.stem, "invalid", str(err), "", ""))
                continue
            b = c.budget
            budget = ", ".join(
                f"{k}={v}"
                for k, v in (
                    ("n_trials", b.n_trials),
                    ("total_epochs", b.total_epochs),
                    ("wall_seconds", b.wall_seconds),
                )
                if v
            )
            rows.append((c.name, c.label, c.scheduler.name, f"max_epochs={c.max_epochs}", budget))
    header = ("study", "task", "scheduler", "epochs", "budget")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@app.command()
@click.option("--study", "study", required=True, help="Study name in studies/ or a .toml path.")
@click.option("--storage", default=None, help="Storage URL (default: runs/STUDY.journal).")
@click.option("--no-ohgw", is_flag=True, help="Show the vanilla twin.")
def status(study: str, storage: str | None, no_ohgw: bool) -> None:
    """Print trial counts and the best trial without starting anything."""
    from optuna_ohgw.runner import summarize

    with user_errors():
        config = study_config(study, None, no_ohgw, ())
        url = storage or default_url(config.study_name)
        click.echo(summarize(_load_existing(config, url)).format())


def _load_existing(config: StudyConfig, url: str) -> optuna.Study:
    """The study on ``url``; nothing is created when the storage or the study is missing."""
    path = storage_file(normalize_url(url))
    if path is not None and not path.exists():
        raise StorageError(
            f"no storage file {path}; run `ohgw-optuna run --study {config.name}` first, or "
            "check --storage"
        )
    storage = open_storage(url, heartbeat=False, create=False)
    try:
        return optuna.load_study(study_name=config.study_name, storage=storage)
    except KeyError:
        raise StorageError(
            f"no study {config.study_name!r} in {redact(url)}; run "
            f"`ohgw-optuna run --study {config.name}` first"
        ) from None


@app.command()
@click.option("--study", "study", required=True, help="Study name in studies/ or a .toml path.")
@click.option("--storage", default=None, help="Storage URL (default: runs/STUDY.journal).")
@click.option("--no-ohgw", is_flag=True, help="Open the vanilla twin's storage.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, help="Port to serve on.")
@click.option(
    "--artifacts",
    default=None,
    help="Checkpoint store to show on the trials (default: the one the study recorded).",
)
def dashboard(
    study: str, storage: str | None, no_ohgw: bool, host: str, port: int, artifacts: str | None
) -> None:
    """Serve optuna-dashboard on the study's storage, with its checkpoints as trial artifacts."""
    from optuna_ohgw.artifact_store import open_artifact_store, recorded_location

    with user_errors():
        config = study_config(study, None, no_ohgw, ())
        url = storage or default_url(config.study_name)
        where = artifacts or recorded_location(_load_existing(config, url))
        store = open_artifact_store(where, config.study_name) if where else None
        try:
            from optuna_dashboard import run_server
        except ImportError:
            fail("optuna-dashboard is not installed: pip install optuna-dashboard")
        shown = f" (checkpoints from {where})" if where else ""
        click.echo(f"optuna-dashboard for {config.study_name} at http://{host}:{port}/{shown}")
        storage_ = open_storage(url, heartbeat=False, create=False)
        run_server(storage_, host=host, port=port, artifact_store=store)


def _register() -> None:
    from .bench import bench
    from .cluster import storage_proxy, worker
    from .report import report

    app.add_command(bench)
    app.add_command(report)
    app.add_command(worker)
    app.add_command(storage_proxy)


_register()


def main() -> None:
    """The console script: click's usage errors (a bad option value, a missing option) are one
    line on stderr with exit code 2, like every other user error."""
    try:
        code = app.main(standalone_mode=False)
    except click.UsageError as err:
        command = err.ctx.command_path if err.ctx else "ohgw-optuna"
        fail(f"{err.format_message()} (see `{command} --help`)")
    except click.ClickException as err:
        fail(err.format_message())
    except click.Abort:
        fail("aborted", code=1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
