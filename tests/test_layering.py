"""The library (sampler, steps, probes, objective, schedulers) never imports the application
(tasks, the runner, the evidence code, the CLI)."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "optuna_ohgw"
LIBRARY = [
    PACKAGE / "sampler.py",
    PACKAGE / "steps.py",
    PACKAGE / "objective.py",
    *sorted((PACKAGE / "probes").glob("*.py")),
    *sorted((PACKAGE / "schedulers").glob("*.py")),
    *sorted((PACKAGE / "recipes").glob("*.py")),
]
APPLICATION = ("optuna_ohgw.tasks", "optuna_ohgw.runner", "optuna_ohgw.evidence", "cli")


def _imports(path: pathlib.Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_does_not_import_the_application(path: pathlib.Path) -> None:
    bad = [n for n in _imports(path) if any(n == a or n.startswith(f"{a}.") for a in APPLICATION)]
    assert not bad, f"{path.name} imports {bad}"
