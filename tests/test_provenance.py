"""Which code and machine ran a bench cell: a frozen tree's COMMIT, a checkout's commit (dirty
or not), the installed version, and a machine described without its name."""

from __future__ import annotations

import pathlib
import platform
import subprocess

from optuna_ohgw.evidence.provenance import ROOT, code_version, machine, short


def _git(repo: pathlib.Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def test_code_version_names_the_commit_that_runs(tmp_path: pathlib.Path) -> None:
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    (frozen / "COMMIT").write_text("4c85f4827f1d5750d51356df8b087bfbc71f6014\n")
    assert code_version(frozen) == "4c85f4827f1d5750d51356df8b087bfbc71f6014"

    repo = tmp_path / "checkout"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    _git(repo, "add", "a.py")
    _git(repo, "commit", "-qm", "a")
    head = _git(repo, "rev-parse", "HEAD")
    assert code_version(repo) == head
    (repo / "new.txt").write_text("untracked files do not make it dirty\n")
    assert code_version(repo) == head
    (repo / "a.py").write_text("x = 2\n")
    assert code_version(repo) == f"{head}+dirty"

    elsewhere = code_version(tmp_path / "site-packages")  # neither: the installed version
    assert elsewhere.startswith("optuna-ohgw ") or elsewhere == "unknown"
    assert code_version(ROOT)  # this checkout


def test_machine_is_described_not_named() -> None:
    words = machine()
    assert words.startswith(f"{platform.machine()}, ") and " cores" in words
    assert "torch " in words and platform.node() not in words


def test_short_commits_keep_the_dirty_mark() -> None:
    sha = "4c85f4827f1d5750d51356df8b087bfbc71f6014"
    assert short(sha) == "4c85f48" and short(f"{sha}+dirty") == "4c85f48+dirty"
    assert short("optuna-ohgw 0.1.0") == "optuna-ohgw 0.1.0"
