"""Committed reports and journal snapshots carry no absolute path of the machine that made
them, and a snapshot restores to a journal that opens wherever it is put."""

from __future__ import annotations

import gzip
import pathlib
import re

import optuna
import pytest

from optuna_ohgw.evidence.grid import DONE_ATTR
from optuna_ohgw.evidence.snapshot import (
    PLACEHOLDER,
    absolute_paths,
    restore_journal,
    scrub,
    snapshot_journal,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
GRID_SCRIPTS = ROOT / "benchmarks" / "issue19", ROOT / "benchmarks" / "issue27"
"""The grids' queue and report scripts (issue 25: scripts live in benchmarks/, reports stay)."""
TEXT = {".md", ".csv", ".txt", ".sh", ".toml", ".json"}
SYSTEM = ("/bin/", "/usr/bin/", "/dev/", "/proc/")
"""Paths every machine has (a script's shebang, ``/dev/null``): not the maker's."""


def test_absolute_paths_finds_paths_not_ratios_or_urls() -> None:
    text = (
        "ratio 0.85/0.88, see https://example.org/a/b, runs/issue19/x.journal, @GRID@/cells/a, "
        "journal:/work/grids/issue13/fashion.journal and (/home/me/x)"
    )
    assert absolute_paths(text) == ["/work/grids/issue13/fashion.journal", "/home/me/x"]
    assert scrub("/work/g/cells/a.toml", "/work/g") == f"{PLACEHOLDER}/cells/a.toml"


@pytest.mark.parametrize(
    "path",
    sorted(
        p
        for folder in (REPORTS, *GRID_SCRIPTS)
        for p in folder.rglob("*")
        if p.suffix in TEXT | {".py"} or p.name.endswith(".gz")
    ),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_reports_carry_no_absolute_paths(path: pathlib.Path) -> None:
    text = gzip.open(path, "rt").read() if path.suffix == ".gz" else path.read_text()
    found = [p for p in absolute_paths(text) if not p.startswith(SYSTEM)]
    assert not found, f"{path.relative_to(ROOT)}: absolute path {found[0]!r}"


def test_reports_hold_no_scripts_and_the_scripts_named_there_exist() -> None:
    scripts = sorted(
        str(p.relative_to(ROOT)) for p in REPORTS.rglob("*") if p.suffix in {".py", ".sh"}
    )
    assert not scripts, f"scripts belong in benchmarks/, not reports/: {scripts}"
    named = {
        m
        for p in (*REPORTS.rglob("*.md"), ROOT / "README.md", *GRID_SCRIPTS[0].iterdir())
        # summary.md is generated (report.sh, from notes.md): regenerated, it names these too.
        if p.suffix in {".md", ".sh", ".py"} and p != REPORTS / "summary.md"
        for m in re.findall(r"(?:benchmarks|reports)/issue\d+/[\w-]+\.(?:sh|py)", p.read_text())
    }
    assert named, "no script path found to check"
    missing = sorted(m for m in named if not (ROOT / m).exists())
    assert not missing, f"named but not there: {missing}"


def test_snapshot_keeps_finished_cells_and_restores_anywhere(tmp_path: pathlib.Path) -> None:
    grid = tmp_path / "grid"
    grid.mkdir()
    journal = grid / "g.journal"
    backend = optuna.storages.journal.JournalFileBackend(str(journal))
    storage = optuna.storages.JournalStorage(backend)
    for name, done in (("done", True), ("running", False)):
        study = optuna.create_study(study_name=name, storage=storage)
        study.set_user_attr("ohgw.study_file", str(grid / "cells" / f"{name}.toml"))
        if done:
            study.set_user_attr(DONE_ATTR, True)
        study.add_trial(optuna.trial.create_trial(value=1.0))
    out = tmp_path / "g.journal.gz"
    assert snapshot_journal(journal, out, grid) == ["done"]
    assert not absolute_paths(gzip.open(out, "rt").read())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    restore_journal(out, elsewhere / "g.journal", elsewhere)
    back = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(elsewhere / "g.journal"))
    )
    (summary,) = optuna.get_all_study_summaries(back)
    assert summary.study_name == "done" and summary.n_trials == 1
    assert summary.user_attrs["ohgw.study_file"] == str(elsewhere / "cells" / "done.toml")

    optuna.create_study(study_name="x", storage=storage).set_user_attr(DONE_ATTR, "/opt/x/y")
    with pytest.raises(ValueError, match="not portable"):
        snapshot_journal(journal, out, grid)
