"""``import optuna_ohgw``, study-file parsing and the command line's ``--help`` do not import
torch (it is imported where a probe, a task or a checkpoint is built)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_import_and_study_files_do_not_import_torch() -> None:
    loaded = _modules_after(
        "import optuna_ohgw, optuna_ohgw.schedulers, optuna_ohgw.probes\n"
        "from optuna_ohgw.studyfile import load_study_file\n"
        "for name in ('digits-asha', 'mnist1d-pasha', 'mnist1d-dyhpo'):\n"
        "    load_study_file(f'studies/{name}.toml')\n"
        "import cli.main"
    )
    assert "torch" not in loaded
    assert "optuna_ohgw.studyfile" in loaded and "cli.main" in loaded


def test_public_names_load_on_first_access() -> None:
    loaded = _modules_after(
        "import optuna_ohgw\n"
        "assert optuna_ohgw.LookaheadProbe.__name__ == 'LookaheadProbe'\n"
        "assert 'OHGWSampler' in dir(optuna_ohgw)"
    )
    assert "torch" in loaded and "optuna_ohgw.probes._lookahead" in loaded


def test_unknown_name_is_an_attribute_error() -> None:
    import optuna_ohgw

    with pytest.raises(AttributeError, match="NoSuchThing"):
        optuna_ohgw.NoSuchThing  # noqa: B018
