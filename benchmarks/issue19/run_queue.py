"""Issue 19's grid as a queue that several processes share (one core each).

    python benchmarks/issue19/run_queue.py GRID     (run by resume.sh, from GRID/code)

Every stage of issue 19's grid (``STAGES``: the order of priority of ``README.md``), seed by
seed: the cells are the ones ``ohgw-optuna bench`` makes for each stage, run by the same
``run_grid`` of the frozen code (``PYTHONPATH=GRID/code``). Each process takes the next cell
nobody has claimed: a claim is a folder ``GRID/claims/STUDY`` made with ``mkdir`` (atomic), so
two processes never run one cell. ``resume.sh`` clears the claims before it starts the
processes (none runs then), so a cell whose process died is taken again and, being unfinished,
rerun whole. Finished cells are skipped, so every cell is still exactly what an uninterrupted
one-process grid gives (on the same machine: see ``machine``).
"""

from __future__ import annotations

import datetime
import os
import pathlib
import sys

STAGES = [
    # (journal, task, schedulers, variants, virtual workers, budget[, seeds]): the issue's
    # order of priority, plus MNIST-1D's target pilot (vanilla, seeds 0-1) right after stage
    # (a), so that its targets are fixed before any of its warm-start arms has run
    ("fashion-w8", "fashion", "asha", "vanilla,line-search,random-sign", 8, ("n_trials=30",)),
    ("mnist1d-w8", "mnist1d", "asha", "vanilla", 8, (), 2),
    (
        "fashion-w1",
        "fashion",
        "asha",
        "vanilla,line-search,random-sign,ohgw-normalized",
        1,
        ("n_trials=30",),
    ),
    ("fashion-w8", "fashion", "asha", "ohgw-normalized,toward-middle", 8, ("n_trials=30",)),
    (
        "mnist1d-w8",
        "mnist1d",
        "asha",
        "vanilla,ohgw-normalized,line-search,random-sign,toward-middle",
        8,
        (),
    ),
    (
        "mnist1d-promotion-w8",
        "mnist1d",
        "pasha,asha-promotion",
        "vanilla,ohgw-normalized,line-search",
        8,
        (),
    ),
    # (f), beyond the list: MNIST-1D ASHA at one worker up to 20 seeds (issue 13 ran
    # seeds 0-7 with one real worker: resume.sh seeds this journal with them), so that the
    # one-worker side-by-side has 20 paired seeds on both tasks
    (
        "mnist1d-w1",
        "mnist1d",
        "asha",
        "vanilla,line-search,random-sign,ohgw-normalized",
        1,
        (),
    ),
]
SEEDS = 20


def log(message: str) -> None:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"== {stamp} [{os.getpid()}] {message}", flush=True)


def finished(url: str) -> set[str]:
    """The cells of a journal already marked done (one read of the journal, so that a resumed
    queue passes the finished cells of earlier stages quickly instead of claiming each)."""
    import optuna

    from optuna_ohgw.evidence.grid import DONE_ATTR
    from optuna_ohgw.storage import open_storage

    return {
        s.study_name
        for s in optuna.get_all_study_summaries(open_storage(url), include_best_trial=False)
        if s.user_attrs.get(DONE_ATTR)
    }


def unfinished(study_name: str, url: str) -> None:
    """Delete the study of a virtual cell that was stopped part-way, so that it reruns whole.

    A finished cell has ``DONE_ATTR``. Without it, the frozen code's ``cell_finished`` also
    takes a cell as finished once ``n_trials`` configurations ended, though the configurations
    that other virtual workers had started by then were still RUNNING when it was stopped.
    """
    import optuna

    from optuna_ohgw.evidence.grid import DONE_ATTR
    from optuna_ohgw.storage import open_storage

    storage = open_storage(url)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return
    if not study.user_attrs.get(DONE_ATTR):
        log(f"{study_name}: stopped part-way before, deleted to rerun whole")
        optuna.delete_study(study_name=study_name, storage=storage)


MACHINE_ATTR = "ohgw.bench.machine"


def machine() -> dict[str, str]:
    """What a cell's floating point depends on besides its code and seed: the CPU's model and
    the kernels torch picked for it, torch's version. On one machine a virtual cell is the
    same bit for bit (rerun here: every value and virtual time equal); another CPU rounds
    differently and training carries that into every later value, so a cell rerun elsewhere is
    another sample of the same experiment, not a copy."""
    import platform

    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
    }


def record_machine(study_name: str, url: str) -> None:
    import optuna

    from optuna_ohgw.storage import open_storage

    study = optuna.load_study(study_name=study_name, storage=open_storage(url))
    study.set_user_attr(MACHINE_ATTR, machine())


def main(grid: pathlib.Path) -> None:
    import optuna

    import optuna_ohgw
    from optuna_ohgw.evidence.grid import cell_config, grid_cells, run_grid
    from optuna_ohgw_cli._common import STUDY_DIRS, parse_budget

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    log(f"queue runner on the code in {pathlib.Path(optuna_ohgw.__file__).parent.parent}")
    claims = grid / "claims"
    claims.mkdir(exist_ok=True)
    ran = failed = 0
    for journal, task, schedulers, variants, workers, budget, *seeds in STAGES:
        cells = grid_cells(
            task,
            schedulers.split(","),
            variants.split(","),
            range(seeds[0] if seeds else SEEDS),
            workers=workers,
        )
        overrides = parse_budget(budget)
        for cell in cells:
            cell_config(cell, overrides, STUDY_DIRS)  # a bad study file fails before any run
        done = finished(f"journal:{grid / journal}.journal")
        for cell in cells:
            if cell.study_name in done:
                continue
            try:
                (claims / cell.study_name).mkdir()
            except FileExistsError:
                continue
            (claims / cell.study_name / "pid").write_text(f"{os.getpid()}\n")
            unfinished(cell.study_name, f"journal:{grid / journal}.journal")
            log(f"{journal}: {cell.study_name}")
            (result,) = run_grid(
                [cell],
                f"journal:{grid / journal}.journal",
                budget=overrides,
                virtual=True,
                clock="epochs",
                threads=1,
                grid_dir=grid / journal,
                study_dirs=STUDY_DIRS,
            )
            if result.status == "done":
                record_machine(cell.study_name, f"journal:{grid / journal}.journal")
            log(f"{journal}: {cell.study_name} {result.status}")
            ran += result.status == "done"
            failed += result.status == "incomplete"
    log(f"queue empty: {ran} cell(s) run, {failed} incomplete")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]).resolve())
